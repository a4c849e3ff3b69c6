"""The report: summary.json in its documented shape, report.md, the PNG, the console table."""
import json
import os

import numpy as np
import pytest

from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.retrieval_evaluator import report

KEYS = {"model_version", "blessed", "eval_examples", "context_mode", "metrics", "intervals",
        "lifts", "slices", "blessing"}
NO_ORACLES = (m.CONTEXTUAL, m.HISTORY_ONLY, m.POPULARITY, m.CONTEXT_POPULARITY, m.LAST_VIEWED,
              m.SESSION_VIEWS)


def _ranks(methods=NO_ORACLES, modes=m.MODES, n=60):
  rng = np.random.default_rng(0)
  return {method: {mode: rng.integers(1, 300, size=n).astype(float) for mode in modes}
          for method in methods}


def _inputs(methods=NO_ORACLES, modes=m.MODES):
  ranks = _ranks(methods, modes)
  metrics = {method: {mode: m.metrics_from_ranks(r) for mode, r in by_mode.items()}
             for method, by_mode in ranks.items()}
  intervals = {method: {mode: m.bootstrap_intervals(r, samples=20) for mode, r in by_mode.items()}
               for method, by_mode in ranks.items()}
  return metrics, intervals


def _statistics(ranks, users):
  """(metrics, intervals, lifts) by method and mode, as the executor pivots them."""
  metrics, intervals, lifts = {}, {}, {}
  for mode in m.MODES:
    stats = m.statistics({x: r[mode] for x, r in ranks.items() if mode in r}, users, samples=50)
    lifts[mode] = stats.lifts
    for method in stats.metrics:
      metrics.setdefault(method, {})[mode] = stats.metrics[method]
      intervals.setdefault(method, {})[mode] = stats.intervals[method]
  return metrics, intervals, lifts


def _summary(ranks=None, context_mode="categories", **kwargs):
  ranks = ranks or _ranks(**kwargs)
  users = np.arange(60) % 20
  metrics, intervals, lifts = _statistics(ranks, users)
  cold = {x: {mode: r[:10] for mode, r in by_mode.items()} for x, by_mode in ranks.items()}
  slice_metrics, slice_intervals, _ = _statistics(cold, users[:10])
  return report.build_summary(metrics, intervals, eval_examples=60, blessed=True,
                              blessing={"reasons": ["pass: beats popularity"], "margin": 0.05},
                              model_version=np.int64(3), lifts=lifts,
                              slices={m.COLD_START: (slice_metrics, slice_intervals)},
                              context_mode=context_mode)


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
  assert summary["context_mode"] == "categories"
  assert set(summary["metrics"]) == set(NO_ORACLES)
  assert set(summary["lifts"]) == set(m.MODES)
  for mode in m.MODES:
    assert set(summary["lifts"][mode]) == set(m.BASELINE_METHODS)
    for entry in summary["lifts"][mode].values():
      assert set(entry) == {"lift", "interval", "n", "users"} and entry["n"] == 60
      assert entry["users"] == 20 and entry["interval"][0] <= entry["lift"] <= entry["interval"][1]
  assert list(summary["slices"]) == [m.COLD_START]
  cold = summary["slices"][m.COLD_START]
  assert set(cold) == {"metrics", "intervals"} and set(cold["metrics"]) == set(NO_ORACLES)
  assert cold["metrics"][m.CONTEXTUAL][m.REAL_CONTEXT]["n"] == 10
  assert set(cold["metrics"][m.CONTEXTUAL][m.NO_CONTEXT]) == {"recall@10", "recall@100", "n"}
  assert set(cold["intervals"][m.POPULARITY][m.NO_CONTEXT]) == {"recall@10", "recall@100"}
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
  tables = text.split("## Paired lift")[0]
  for method in NO_ORACLES:
    assert tables.count(f"| {method} |") == 2
  assert "oracle" not in text.split("## How")[0]
  row = next(line for line in text.splitlines() if line.startswith("| contextual |"))
  assert row.count(" [") == len(m.METRIC_NAMES)
  assert "MRR@100" in text and "synthetic/oracle.py" in text and "full" in text
  lifts = text.split("## Paired lift")[1].split("## Slices")[0]
  assert "| baseline | real_context | no_context |" in lifts
  assert all(f"| {baseline} | " in lifts for baseline in m.BASELINE_METHODS)
  slices = text.split("## Slices")[1].split("## How")[0]
  assert "### `cold_start`" in slices and "real_context recall@100" in slices
  rows = [line for line in slices.splitlines() if line.startswith("| ") and "---" not in line]
  assert len(rows) == 1 + len(NO_ORACLES)
  notes = text.split("## How")[1]
  assert "user-level (cluster) bootstrap" in notes and "paired bootstrap" in notes
  assert "session_views puts the session's distinct viewed items first" in notes
  assert "last_viewed, session_views)" in notes  # the blessing's baselines
  assert "`margin` (+5.0%)" in notes and "`no_context_floor_margin`" in notes


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
  assert "## Paired lift" not in text and "## Slices" not in text
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
  assert summary["lifts"] == {} and summary["slices"] == {} and summary["context_mode"] is None
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


def _beaten_by(winner):
  """Ranks where `winner` hits every label and the others hit a few."""
  ranks = _ranks()
  for mode in m.MODES:
    ranks[winner][mode] = np.ones(60)
  return ranks


def test_the_report_says_plainly_which_method_wins_when_the_model_does_not(tmp_path):
  summary = _summary(_beaten_by(m.LAST_VIEWED))
  assert report.headline(summary).startswith(
      "last_viewed beats the model: real_context recall@100 1.000 [1.000, 1.000] vs contextual ")
  text = open(report.write_report(summary, str(tmp_path))[report.REPORT_FILE]).read()
  assert "**last_viewed beats the model" in text
  assert report.headline(_summary(_beaten_by(m.CONTEXTUAL))).startswith(
      "The model wins in real_context mode at recall@100; the best other method is ")


def test_headline_without_real_context_examples():
  ranks = _ranks(modes=(m.NO_CONTEXT,))
  metrics, intervals, lifts = _statistics(ranks, np.arange(60))
  empty = m.statistics({x: np.zeros(0) for x in ranks}, np.zeros(0))
  for method in ranks:
    metrics[method][m.REAL_CONTEXT] = empty.metrics[method]
  summary = report.build_summary(metrics, intervals, 60, False, {}, lifts=lifts)
  assert report.headline(summary).startswith("No eval example has a real context")


def test_the_oracle_matched_to_the_context_mode_is_labelled_its_ceiling(tmp_path):
  methods = NO_ORACLES + (m.ORACLE_CONTEXT_ITEM, m.ORACLE_CONTEXT_CATEGORIES)
  ranks = _ranks(methods)
  for oracle in (m.ORACLE_CONTEXT_ITEM, m.ORACLE_CONTEXT_CATEGORIES):
    del ranks[oracle][m.NO_CONTEXT]
  text = report.render_markdown(_summary(ranks, context_mode="item"))
  assert "| oracle_context_item (ceiling for context mode item, whole session) |" in text
  assert "context oracles see each example's whole logged session" in text.split("## How")[1]
  assert "| oracle_context_categories |" in text
  assert "ceiling for context mode categories" not in text
  assert report.ceiling(_summary(ranks)) == m.ORACLE_CONTEXT_CATEGORIES
  assert report.ceiling({"context_mode": None}) is None


def test_an_unbounded_lift_is_null_in_json_and_renders_from_the_loaded_summary(tmp_path):
  ranks = _ranks()
  ranks[m.POPULARITY][m.REAL_CONTEXT] = np.full(60, 500.0)  # popularity recalls nothing
  summary = _summary(ranks)
  entry = summary["lifts"][m.REAL_CONTEXT][m.POPULARITY]
  assert entry["lift"] is None and entry["interval"][1] is None
  paths = report.write_report(summary, str(tmp_path))
  with open(paths[report.SUMMARY_FILE]) as handle:
    text = handle.read()
  assert "Infinity" not in text
  loaded = json.loads(text)
  assert "| popularity | +inf [" in report.render_markdown(loaded)


def test_unknown_slices_and_lift_names_are_rejected():
  metrics, intervals = _inputs((m.CONTEXTUAL,), (m.REAL_CONTEXT,))
  with pytest.raises(ValueError, match="'warm'"):
    report.build_summary(metrics, intervals, 1, True, {}, slices={"warm": (metrics, intervals)})
  entry = {"lift": 0.1, "interval": (0.0, 0.2), "n": 1}
  with pytest.raises(ValueError, match="'oracle_history'"):
    report.build_summary(metrics, intervals, 1, True, {},
                         lifts={m.REAL_CONTEXT: {m.ORACLE_HISTORY: entry}})


def test_slices_render_in_their_order_and_an_empty_one_says_so():
  ranks = _ranks()
  users = np.arange(60) % 20
  metrics, intervals, _ = _statistics(ranks, users)
  empty = {x: {mode: r[:0] for mode, r in by_mode.items()} for x, by_mode in ranks.items()}
  none_metrics, none_intervals, _ = _statistics(empty, users[:0])
  summary = report.build_summary(metrics, intervals, 60, True, {}, slices={
      m.UNSEEN_CONTEXT: (metrics, intervals), m.UNSEEN_LABEL: (none_metrics, none_intervals)})
  loaded = json.loads(json.dumps(summary, sort_keys=True))  # as local_runner reads it back
  text = report.render_markdown(loaded)
  assert text.index("### `unseen_label`") < text.index("### `unseen_context`")
  label = text.split("### `unseen_label`")[1].split("###")[0]
  assert "No eval example falls in this slice." in label and "| contextual |" not in label


def test_the_label_seen_slices_are_listed_in_summary_and_report_in_bucket_order(tmp_path):
  ranks = _ranks()
  users = np.arange(60) % 20
  slices = {}
  for i, name in enumerate(m.SLICES):  # a different 10 rows per slice
    part = {x: {mode: r[6 * i:6 * i + 10] for mode, r in by_mode.items()}
            for x, by_mode in ranks.items()}
    slices[name] = _statistics(part, users[6 * i:6 * i + 10])[:2]
  metrics, intervals, lifts = _statistics(ranks, users)
  summary = report.build_summary(metrics, intervals, 60, True, {}, lifts=lifts, slices=slices)
  assert list(summary["slices"]) == list(m.SLICES)
  loaded = json.loads(open(report.write_report(summary, str(tmp_path))[report.SUMMARY_FILE]).read())
  assert loaded["slices"][m.LABEL_SEEN_2_9]["metrics"][m.CONTEXTUAL][m.REAL_CONTEXT]["n"] == 10
  text = report.render_markdown(loaded)
  names = ["unseen_label", "label_seen_1", "label_seen_2_9", "label_seen_10_plus"]
  positions = [text.index(f"### `{name}`") for name in names]
  assert positions == sorted(positions) and positions[-1] < text.index("### `unseen_context`")
  bucket = text.split("### `label_seen_10_plus`")[1].split("###")[0]
  assert "| contextual |" in bucket and "real_context recall@100" in bucket
  notes = text.split("## How")[1]
  assert ("unseen_label (0), label_seen_1 (1), label_seen_2_9 (2-9), label_seen_10_plus (10+)"
          in notes)
  assert "session_1 (1), session_2_3 (2-3), session_4_plus (4+)" in notes
  sessions = [text.index(f"### `{name}`") for name in m.SESSION_LENGTH_BUCKETS]
  assert sessions == sorted(sessions) and sessions[0] > text.index("### `unseen_context`")
  assert "| session_views |" in text.split("### `session_4_plus`")[1]


def test_a_refused_model_s_report_says_why_next_to_the_reasons():
  from ctxrec.components.retrieval_evaluator import blessing
  from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig
  ranks = _beaten_by(m.LAST_VIEWED)
  metrics, intervals, lifts = _statistics(ranks, np.arange(60) % 20)
  config = EvaluatorConfig()
  blessed, reasons = blessing.decide(metrics, lifts, config)
  summary = report.build_summary(metrics, intervals, 60, blessed,
                                 {"reasons": reasons, **blessing.parameters(config)}, lifts=lifts)
  text = report.render_markdown(json.loads(json.dumps(summary)))
  verdict = text.split("## Mode")[0]
  assert "**Blessed: no**" in verdict
  line = next(l for l in verdict.splitlines() if l.startswith("**not blessed: "))
  assert "real_context recall@100 vs last_viewed" in line and "the model loses to" in line
  assert verdict.index("- FAIL: ") < verdict.index(line)  # after the reasons
  assert "**not blessed" not in report.render_markdown(_summary())  # blessed: no such line
