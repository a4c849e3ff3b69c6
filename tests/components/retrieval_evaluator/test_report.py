"""The report: summary.json in its documented shape, report.md, the PNG, the console table."""
import json
import os

import numpy as np
import pytest

from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.retrieval_evaluator import report

KEYS = {"model_version", "blessed", "eval_examples", "metrics", "intervals", "blessing"}
NO_ORACLES = (m.CONTEXTUAL, m.HISTORY_ONLY, m.POPULARITY, m.CONTEXT_POPULARITY)


def _inputs(methods=NO_ORACLES, modes=m.MODES):
  rng = np.random.default_rng(0)
  ranks = {method: {mode: rng.integers(1, 300, size=60).astype(float) for mode in modes}
           for method in methods}
  metrics = {method: {mode: m.metrics_from_ranks(r) for mode, r in by_mode.items()}
             for method, by_mode in ranks.items()}
  intervals = {method: {mode: m.bootstrap_intervals(r, samples=20) for mode, r in by_mode.items()}
               for method, by_mode in ranks.items()}
  return metrics, intervals


def _summary(**kwargs):
  metrics, intervals = _inputs(**kwargs)
  return report.build_summary(metrics, intervals, eval_examples=60, blessed=True,
                              blessing={"reasons": ["pass: beats popularity"], "margin": 0.05},
                              model_version=np.int64(3))


def test_report_files_have_the_documented_shape(tmp_path):
  directory = str(tmp_path / "evaluation")
  paths = report.write_report(_summary(), directory)
  assert set(paths) == {report.SUMMARY_FILE, report.REPORT_FILE, report.PLOT_FILE}
  assert sorted(os.listdir(tmp_path)) == ["evaluation"]  # no staging dir left behind
  with open(paths[report.SUMMARY_FILE]) as handle:
    summary = json.load(handle)
  assert set(summary) == KEYS
  assert summary["model_version"] == 3 and summary["blessed"] is True
  assert summary["eval_examples"] == 60
  assert summary["blessing"] == {"reasons": ["pass: beats popularity"], "margin": 0.05}
  assert set(summary["metrics"]) == set(NO_ORACLES)
  for method in NO_ORACLES:
    for mode in m.MODES:
      row = summary["metrics"][method][mode]
      assert set(row) == set(m.METRIC_NAMES) | {"n"}
      assert isinstance(row["n"], int) and all(isinstance(row[k], float) for k in m.METRIC_NAMES)
      bounds = summary["intervals"][method][mode]
      assert set(bounds) == set(m.METRIC_NAMES)
      assert all(len(b) == 2 and b[0] <= b[1] for b in bounds.values())
  with open(paths[report.PLOT_FILE], "rb") as handle:
    assert handle.read(8).startswith(b"\x89PNG")


def test_markdown_has_verdict_tables_intervals_and_definitions(tmp_path):
  paths = report.write_report(_summary(), str(tmp_path))
  with open(paths[report.REPORT_FILE]) as handle:
    text = handle.read()
  assert "Blessed: yes" in text and "pass: beats popularity" in text
  for mode in m.MODES:
    assert f"## Mode `{mode}`" in text
  for method in NO_ORACLES:
    assert text.count(f"| {method} |") == 2
  assert "oracle" not in text.split("## How")[0]
  row = next(line for line in text.splitlines() if line.startswith("| contextual |"))
  assert row.count(" [") == len(m.METRIC_NAMES)
  assert "MRR@100" in text and "synthetic/oracle.py" in text and "full" in text


def test_absent_methods_and_modes_are_fine(tmp_path):
  metrics, intervals = _inputs()
  oracle_metrics, oracle_intervals = _inputs((m.ORACLE_CONTEXTUAL,), (m.REAL_CONTEXT,))
  metrics.update(oracle_metrics)
  del intervals[m.POPULARITY]  # a method without intervals still reports its values
  summary = report.build_summary(metrics, {**intervals, **oracle_intervals}, 60, False,
                                 {"reasons": ["FAIL: no lift"]})
  assert summary["model_version"] is None
  assert set(summary["metrics"][m.ORACLE_CONTEXTUAL]) == {m.REAL_CONTEXT}
  paths = report.write_report(summary, str(tmp_path))
  text = open(paths[report.REPORT_FILE]).read()
  assert "Blessed: no" in text and text.count("| oracle_contextual |") == 1
  table = report.format_table(summary)
  assert "oracle_contextual" in table and "oracle_history" not in table
  assert len(table.splitlines()) == 1 + 2 * len(NO_ORACLES) + 1


def test_rewriting_replaces_files_and_a_failure_leaves_the_old_report(tmp_path, monkeypatch):
  directory = str(tmp_path / "evaluation")
  report.write_report(_summary(), directory)
  before = open(os.path.join(directory, report.SUMMARY_FILE)).read()

  def broken_plot(summary, path):
    raise RuntimeError("disk full")

  monkeypatch.setattr(report, "_plot", broken_plot)
  with pytest.raises(RuntimeError):
    report.write_report(report.build_summary({}, {}, 0, False, {}), directory)
  assert open(os.path.join(directory, report.SUMMARY_FILE)).read() == before
  assert sorted(os.listdir(tmp_path)) == ["evaluation"]


def test_empty_summary_still_reports(tmp_path):
  summary = report.build_summary({}, {}, 0, False, {})
  assert summary["blessing"] == {"reasons": []} and summary["metrics"] == {}
  paths = report.write_report(summary, str(tmp_path))
  assert "No method was evaluated." in open(paths[report.REPORT_FILE]).read()
  assert len(report.format_table(summary).splitlines()) == 1


def test_format_table_lists_each_method_and_mode():
  table = report.format_table(_summary())
  lines = table.splitlines()
  assert lines[0].split() == ["method", "mode", "recall@10", "recall@20", "recall@50",
                              "recall@100", "ndcg@10", "mrr", "n"]
  assert len({len(line) for line in lines}) == 1  # fixed width
  for method in NO_ORACLES:
    assert sum(line.startswith(method + " ") for line in lines) == 2


def test_build_summary_rejects_unknown_names_and_incomplete_rows():
  metrics, intervals = _inputs((m.CONTEXTUAL,), (m.REAL_CONTEXT,))
  with pytest.raises(ValueError, match="'contextal'"):
    report.build_summary({"contextal": metrics[m.CONTEXTUAL]}, {}, 1, True, {})
  with pytest.raises(ValueError, match="'live'"):
    report.build_summary({m.CONTEXTUAL: {"live": {}}}, {}, 1, True, {})
  with pytest.raises(ValueError, match="lacks mrr"):
    del metrics[m.CONTEXTUAL][m.REAL_CONTEXT]["mrr"]
    report.build_summary(metrics, intervals, 1, True, {})
