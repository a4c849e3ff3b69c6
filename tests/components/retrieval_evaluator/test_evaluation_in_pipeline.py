"""RetrievalEvaluator and Pusher inside the real pipeline on tiny: report, blessing, push."""
import json
import os
import shutil

import pytest

from ctxrec.components.retrieval_evaluator import blessing
from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.pipeline import local_runner
from ctxrec.pipeline.config import PipelineConfig
from ctxrec.synthetic import oracle
from ctxrec.transform import features as f

pytestmark = pytest.mark.slow
NOT_ORACLES = m.MODEL_METHODS + m.BASELINE_METHODS
METRIC_KEYS = {"recall@10", "recall@20", "recall@50", "recall@100", "ndcg@10", "ndcg@100", "mrr",
               "n"}


def _check_shape(summary):
  assert isinstance(summary["blessed"], bool) and isinstance(summary["eval_examples"], int)
  assert summary["model_version"] is None or isinstance(summary["model_version"], int)
  for method, modes in summary["metrics"].items():
    assert method in m.METHODS
    for mode, values in modes.items():
      assert mode in m.MODES and set(values) == METRIC_KEYS
      assert isinstance(values["n"], int)
      assert all(0.0 <= values[k] <= 1.0 for k in METRIC_KEYS - {"n"})
  assert set(summary["slices"]) == set(m.SLICES)
  for part in summary["slices"].values():
    for modes in part["metrics"].values():
      assert all(set(values) == {"recall@10", "recall@100", "n"} for values in modes.values())
  for mode, by_baseline in summary["lifts"].items():
    assert mode in m.MODES and set(by_baseline) <= set(m.BASELINE_METHODS)
    for entry in by_baseline.values():
      assert set(entry) == {"lift", "interval", "n", "users"} and entry["n"] > 0


def test_report_is_written_and_the_blessed_model_pushed_in_serving_layout(tiny_pipeline):
  config, run = tiny_pipeline
  with open(os.path.join(config.report_dir, "summary.json")) as handle:
    summary = json.load(handle)
  assert summary == run.report
  _check_shape(summary)
  # ground truth present: every oracle too
  assert set(summary["metrics"]) == set(NOT_ORACLES) | set(oracle.ORACLES)
  assert set(summary["lifts"][m.REAL_CONTEXT]) == set(m.BASELINE_METHODS)
  assert summary["metrics"][m.CONTEXTUAL][m.REAL_CONTEXT]["n"] <= summary["eval_examples"]
  for name in ("report.md", "recall_at_k.png"):
    assert os.path.getsize(os.path.join(config.report_dir, name)) > 0
  assert summary["blessed"] is True
  version = summary["model_version"]
  assert os.listdir(config.serving_dir) == [str(version)]
  assert os.path.exists(os.path.join(config.serving_dir, str(version), "saved_model.pb"))


def test_context_lifts_the_contextual_model_over_history_only(tiny_pipeline):
  metrics = tiny_pipeline[1].report["metrics"]
  contextual = metrics[m.CONTEXTUAL][m.REAL_CONTEXT]["recall@100"]
  history_only = metrics[m.HISTORY_ONLY][m.REAL_CONTEXT]["recall@100"]
  oracle = metrics[m.ORACLE_CONTEXTUAL][m.REAL_CONTEXT]["recall@100"]
  assert history_only < contextual <= oracle + 0.02


def test_untrained_model_on_data_without_ground_truth_or_users_is_not_pushed(tiny_data, tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  for table in (f.EVENTS, f.ITEMS):
    shutil.copy(os.path.join(tiny_data, f"{table}.parquet"), data)
  config = PipelineConfig(data_dir=str(data), output_dir=str(tmp_path / "out"), train_steps=0)
  summary = local_runner.run_local(config).report
  _check_shape(summary)
  assert set(summary["metrics"]) == set(NOT_ORACLES)
  assert summary["blessed"] is False and summary["model_version"] is None
  assert any(r.startswith("FAIL") for r in summary["blessing"]["reasons"])
  assert not os.path.exists(config.serving_dir) or not os.listdir(config.serving_dir)
  why = blessing.why_not(summary)
  assert why.startswith("not blessed: ") and "would change it" in why
  with open(os.path.join(config.report_dir, "report.md")) as handle:
    assert f"**{why}**" in handle.read()
