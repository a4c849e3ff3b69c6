"""Eval rows behind every number: train counts, slices, modes, the oracles, the whole summary."""
import numpy as np
import pandas as pd
import pytest

from ctxrec.components.retrieval_evaluator import executor
from ctxrec.components.retrieval_evaluator import methods
from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig
from ctxrec.trainer.exported_model import EvalRequests
from ctxrec.transform import category_keys
from ctxrec.transform import features as f

ITEMS = ["a", "b", "c", "d", "e"]


def _catalog() -> methods.Catalog:
  items = pd.DataFrame({f.ITEM_ID: ITEMS,
                        f.CATEGORIES: [["X"], ["X"], ["Y"], ["Y", "X"], ["Z"]],
                        f.CONFIDENCES: [[1.0], [1.0], [1.0], [0.6, 0.4], [1.0]]})
  primary = np.array([0, 0, 1, 1, 2])
  return methods.Catalog(items, primary, {"X": 0, "Y": 1, "Z": 2}, pd.Index(ITEMS),
                         category_keys.keys_of(["X", "Y", "Z"])[primary])


def _strings(rows, width):
  out = np.full((len(rows), width), "", dtype=object)
  for i, row in enumerate(rows):
    out[i, :len(row)] = row
  return out


def _requests() -> EvalRequests:
  """Six eval examples; the comments give the slices each falls in."""
  histories = [[], ["a"], ["a", "b"], [], ["b"], ["c"]]
  contexts = ["c", "a", "", "e", "d", "zz"]
  categories = [["Y"], ["X"], [], ["Z"], ["Y", "X"], ["Z"]]
  confidences = np.zeros((6, 2), np.float32)
  confidences[:, 0] = [1.0, 1.0, 0.0, 1.0, 0.3, 1.0]
  confidences[4, 1] = 0.9  # d's context lists Y first, but X is its highest confidence
  labels = ["d",  # cold start, context on category, unseen label
            "c",  # context X, label Y: off category
            "a",  # no context
            "zz",  # cold start, label outside the catalog: off category, unseen; unseen context
            "a",  # context primary X (by confidence) = label's: on category; unseen context d
            "e"]  # context outside the catalog: unseen context; unseen label e
  return EvalRequests(
      inputs={f.HISTORY_ITEM_IDS: _strings(histories, 3),
              f.CONTEXT_ITEM_ID: np.array(contexts, dtype=object)[:, None],
              f.CONTEXT_CATEGORIES: _strings(categories, 2),
              f.CONTEXT_CONFIDENCES: confidences},
      labels=np.array(labels, dtype=object),
      user_ids=np.array(["u1", "u1", "u2", "u3", "u2", "u4"], dtype=object),
      timestamps=np.arange(6, dtype=np.int64))


TRAIN_EVENTS = np.array([1, 2, 1, 0, 0])  # a viewed; b converted and viewed; c viewed


def test_train_counts_count_conversions_and_any_event_before_the_eval_start(tmp_path):
  events = pd.DataFrame({
      f.USER_ID: ["u"] * 6,
      f.ITEM_ID: ["a", "b", "b", "c", "d", "q"],
      f.EVENT_TYPE: ["view", "conversion", "view", "view", "conversion", "view"],
      f.TIMESTAMP: np.array([10, 20, 30, 40, 2000, 5], dtype=np.int64)})
  path = str(tmp_path / "events.parquet")
  events.to_parquet(path)
  counts = methods.train_counts(path, _catalog(), before=1000)
  np.testing.assert_array_equal(counts.conversions, [0, 1, 0, 0, 0])
  np.testing.assert_array_equal(counts.events, TRAIN_EVENTS)


def test_train_counts_count_each_distinct_event_once_in_the_run_unit(tmp_path):
  events = pd.DataFrame({
      f.USER_ID: ["u", "u", "u", "v"],
      f.ITEM_ID: ["b", "b", "b", "b"],
      f.EVENT_TYPE: ["conversion", "conversion", "conversion", "conversion"],
      f.TIMESTAMP: np.array([20_000, 20_000, 21_000, 20_000], dtype=np.int64)})  # ms
  path = str(tmp_path / "events.parquet")
  events.to_parquet(path)
  counts = methods.train_counts(path, _catalog(), before=1000, timestamp_unit="ms")
  np.testing.assert_array_equal(counts.conversions, [0, 3, 0, 0, 0])  # the copy is dropped


def test_slices_select_the_right_rows():
  masks = methods.slice_masks(_requests(), _catalog(), TRAIN_EVENTS)
  assert list(masks) == list(m.SLICES)
  expected = {m.COLD_START: [1, 0, 0, 1, 0, 0],
              m.CONTEXT_OFF_CATEGORY: [0, 1, 0, 1, 0, 0],
              m.UNSEEN_LABEL: [1, 0, 0, 1, 0, 1],
              m.LABEL_SEEN_1: [0, 1, 1, 0, 1, 0],  # c and a: one train event each
              m.LABEL_SEEN_2_9: [0] * 6,  # b (2 events) is no label
              m.LABEL_SEEN_10_PLUS: [0] * 6,
              m.UNSEEN_CONTEXT: [0, 0, 0, 1, 1, 1]}
  for name, rows in expected.items():
    np.testing.assert_array_equal(masks[name], np.array(rows, bool), err_msg=name)


def test_label_seen_buckets_split_at_1_2_and_10_train_events():
  frequency = np.array([0, 1, 2, 9, 10, 250])
  buckets = methods.label_seen_buckets(frequency)
  assert list(buckets) == [m.UNSEEN_LABEL, m.LABEL_SEEN_1, m.LABEL_SEEN_2_9, m.LABEL_SEEN_10_PLUS]
  expected = {m.UNSEEN_LABEL: [1, 0, 0, 0, 0, 0], m.LABEL_SEEN_1: [0, 1, 0, 0, 0, 0],
              m.LABEL_SEEN_2_9: [0, 0, 1, 1, 0, 0], m.LABEL_SEEN_10_PLUS: [0, 0, 0, 0, 1, 1]}
  for name, rows in expected.items():
    np.testing.assert_array_equal(buckets[name], np.array(rows, bool), err_msg=name)
  np.testing.assert_array_equal(methods.train_frequency(np.array([-1, 0, 4]), [3, 0, 0, 0, 12]),
                                [0, 3, 12])  # -1: outside the catalog, unseen


def test_label_seen_slices_count_train_events_of_any_type_once(tmp_path):
  """From events.parquet to the masks: the count the popularity baselines' train_counts gives
  (distinct events of any type before the eval start), so unseen_label is the 0 bucket."""
  rows = ([("u", "d", "view", 100 + t) for t in range(10)]  # d: 10 views -> 10+
          + [("u", "c", "view", 10), ("v", "c", "conversion", 20)]  # c: 2 events -> 2-9
          + [("u", "a", "view", 30), ("u", "a", "view", 30)]  # a: one event, logged twice
          + [("u", "e", "conversion", 5000)])  # e: only after the eval start -> unseen
  events = pd.DataFrame(rows, columns=[f.USER_ID, f.ITEM_ID, f.EVENT_TYPE, f.TIMESTAMP])
  events[f.TIMESTAMP] = events[f.TIMESTAMP].astype(np.int64)
  path = str(tmp_path / "events.parquet")
  events.to_parquet(path)
  counts = methods.train_counts(path, _catalog(), before=1000)
  np.testing.assert_array_equal(counts.events, [1, 0, 2, 10, 0])
  masks = methods.slice_masks(_requests(), _catalog(), counts.events)  # labels d c a zz a e
  expected = {m.UNSEEN_LABEL: [0, 0, 0, 1, 0, 1], m.LABEL_SEEN_1: [0, 0, 1, 0, 1, 0],
              m.LABEL_SEEN_2_9: [0, 1, 0, 0, 0, 0], m.LABEL_SEEN_10_PLUS: [1, 0, 0, 0, 0, 0]}
  for name, rows in expected.items():
    np.testing.assert_array_equal(masks[name], np.array(rows, bool), err_msg=name)


def test_mode_rows_and_context_positions():
  requests = _requests()
  rows = methods.mode_rows(requests)
  np.testing.assert_array_equal(rows[m.REAL_CONTEXT], [0, 1, 3, 4, 5])
  np.testing.assert_array_equal(rows[m.NO_CONTEXT], np.arange(6))
  np.testing.assert_array_equal(methods.context_positions(requests, _catalog()),
                                [2, 0, -1, 4, 3, -1])


def test_statistics_by_mode_keeps_the_slice_rows_of_each_mode():
  requests = _requests()
  rows = methods.mode_rows(requests)
  ranks = {m.CONTEXTUAL: {m.REAL_CONTEXT: np.array([1.0, 500, 2, 500, 3]),
                          m.NO_CONTEXT: np.array([500.0, 1, 1, 500, 500, 500])},
           m.ORACLE_CONTEXTUAL: {m.REAL_CONTEXT: np.ones(5)}}
  cold = methods.slice_masks(requests, _catalog(), TRAIN_EVENTS)[m.COLD_START]  # rows 0 and 3
  stats = methods.statistics_by_mode(ranks, rows, requests.user_ids, 20, 0, cold)
  assert stats[m.REAL_CONTEXT].metrics[m.CONTEXTUAL]["recall@10"] == 1.0  # ranks 1 and 2
  assert stats[m.REAL_CONTEXT].metrics[m.CONTEXTUAL]["n"] == 2
  assert stats[m.NO_CONTEXT].metrics[m.CONTEXTUAL]["recall@100"] == 0.0  # ranks 500, 500
  assert set(stats[m.NO_CONTEXT].metrics) == {m.CONTEXTUAL}  # the oracle needs a context
  whole = methods.statistics_by_mode(ranks, rows, requests.user_ids, 20, 0)
  assert whole[m.NO_CONTEXT].metrics[m.CONTEXTUAL]["n"] == 6


def test_every_oracle_is_real_context_only_but_the_history_oracle(tmp_path, monkeypatch):
  from ctxrec.synthetic import oracle
  for table in (f.GROUND_TRUTH, f.GROUND_TRUTH_ITEMS):
    (tmp_path / f"{table}.parquet").write_bytes(b"")
  names = ("oracle_contextual", "oracle_context_item", "oracle_context_categories",
           "oracle_history")
  requests = _requests()
  top = np.array([["a", "d", "c", "zz", "b", "e"]] * 6, dtype=object)
  monkeypatch.setattr(oracle, "ORACLES", names)
  monkeypatch.setattr(oracle, "load_ground_truth", lambda directory: None)
  monkeypatch.setattr(oracle, "oracle_top_k", lambda truth, conversions, k: {n: top for n in names})
  ranks = methods.oracle_ranks(str(tmp_path), requests)
  assert set(ranks) == set(names) <= set(m.ORACLE_METHODS)
  for name in names:
    modes = {m.REAL_CONTEXT, m.NO_CONTEXT} if name == m.ORACLE_HISTORY else {m.REAL_CONTEXT}
    assert set(ranks[name]) == modes
    np.testing.assert_array_equal(ranks[name][m.REAL_CONTEXT], [2, 3, 4, 1, 6])
  assert methods.oracle_ranks(str(tmp_path / "none"), requests) is None


def test_summarize_gives_every_section_of_summary_json():
  requests = _requests()
  rng = np.random.default_rng(0)
  ranks = {method: {m.REAL_CONTEXT: rng.integers(1, 200, 5).astype(float),
                    m.NO_CONTEXT: rng.integers(1, 200, 6).astype(float)}
           for method in m.MODEL_METHODS + m.BASELINE_METHODS}
  slices = methods.slice_masks(requests, _catalog(), TRAIN_EVENTS)
  summary = executor.summarize(ranks, requests, slices,
                               EvaluatorConfig(bootstrap_samples=30, context_mode="item"))
  assert summary["context_mode"] == "item" and summary["eval_examples"] == 6
  assert set(summary["slices"]) == set(m.SLICES)
  assert summary["slices"][m.CONTEXT_OFF_CATEGORY]["metrics"][m.CONTEXTUAL][m.REAL_CONTEXT][
      "n"] == 2
  seen = {name: summary["slices"][name]["metrics"][m.CONTEXTUAL][m.NO_CONTEXT]["n"]
          for name in m.LABEL_SEEN_BUCKETS}
  assert seen == {m.UNSEEN_LABEL: 3, m.LABEL_SEEN_1: 3, m.LABEL_SEEN_2_9: 0,
                  m.LABEL_SEEN_10_PLUS: 0}
  assert set(summary["lifts"][m.REAL_CONTEXT]) == set(m.BASELINE_METHODS)
  assert summary["lifts"][m.NO_CONTEXT][m.POPULARITY]["users"] == 4
  blessing = summary["blessing"]
  assert blessing["margin"] == 0.0 and blessing["no_context_floor_margin"] == -0.1
  assert len(blessing["reasons"]) == len(m.BASELINE_METHODS) + 2


def test_config_travels_through_the_component_and_exec_properties():
  from tfx import types
  from tfx.types import standard_artifacts
  from ctxrec.components.retrieval_evaluator.component import RetrievalEvaluator
  config = EvaluatorConfig(margin=0.1, no_context_floor_margin=-0.2, no_context_ratio=0.8,
                           bootstrap_samples=7, seed=3)

  def channel(kind):
    return types.Channel(type=kind)

  component = RetrievalEvaluator(
      examples=channel(standard_artifacts.Examples), model=channel(standard_artifacts.Model),
      baseline_model=channel(standard_artifacts.Model), input_base="/data", config=config,
      no_context_floor_margin=-0.1, context_mode="item")
  properties = component.exec_properties
  assert properties["no_context_floor_margin"] == -0.1 and properties["context_mode"] == "item"
  assert executor.config_from_exec_properties(properties) == EvaluatorConfig(
      margin=0.1, no_context_floor_margin=-0.1, no_context_ratio=0.8, bootstrap_samples=7,
      seed=3, context_mode="item")
  with pytest.raises(ValueError, match="context_mode"):
    RetrievalEvaluator(
        examples=channel(standard_artifacts.Examples), model=channel(standard_artifacts.Model),
        baseline_model=channel(standard_artifacts.Model), input_base="/data",
        context_mode="both ways")
