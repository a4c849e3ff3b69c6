"""Eval rows behind every number: train counts, slices, modes, the oracles, the whole summary."""
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from ctxrec.components import request_context
from ctxrec.components.request_context import NO_CONTEXT, Context, View
from ctxrec.components.retrieval_evaluator import baselines
from ctxrec.components.retrieval_evaluator import executor
from ctxrec.components.retrieval_evaluator import methods
from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig
from ctxrec.trainer.exported_model import EvalRequests
from ctxrec.transform import category_keys
from ctxrec.transform import features as f

ITEMS = ["a", "b", "c", "d", "e"]
CATEGORIES = [["X"], ["X"], ["Y"], ["Y", "X"], ["Z"]]
CONFIDENCES = [[1.0], [1.0], [1.0], [0.6, 0.4], [1.0]]


def _catalog() -> methods.Catalog:
  items = pd.DataFrame({f.ITEM_ID: ITEMS, f.CATEGORIES: CATEGORIES, f.CONFIDENCES: CONFIDENCES})
  primary = np.array([0, 0, 1, 1, 2])
  return methods.Catalog(items, primary, {"X": 0, "Y": 1, "Z": 2}, pd.Index(ITEMS),
                         category_keys.keys_of(["X", "Y", "Z"])[primary])


def _strings(rows, width):
  out = np.full((len(rows), width), "", dtype=object)
  for i, row in enumerate(rows):
    out[i, :len(row)] = row
  return out


def _view(item_id: str, categories=(), confidences=(), seconds_ago: int = 60) -> View:
  """A view of `item_id`, with its catalog categories unless given."""
  if not categories:
    categories, confidences = CATEGORIES[ITEMS.index(item_id)], CONFIDENCES[ITEMS.index(item_id)]
  return View(item_id, tuple(categories), tuple(confidences), seconds_ago)


# The six eval examples' logged sessions, most recent view first.
SESSIONS = (Context((_view("c"),)),
            Context((_view("a"), _view("b", seconds_ago=90), _view("c", seconds_ago=200))),
            NO_CONTEXT,
            Context((_view("e"),)),
            Context((_view("d", ["Y", "X"], [0.3, 0.9]), _view("a"), _view("b"), _view("a"))),
            Context((_view("zz", ["Z"], [1.0]), _view("e"))))


def _requests() -> EvalRequests:
  """Six eval examples; the comments give the slices each falls in."""
  histories = [[], ["a"], ["a", "b"], [], ["b"], ["c"]]
  labels = ["d",  # cold start, context on category, unseen label; 1 view
            "c",  # context X, label Y: off category; 3 views
            "a",  # no context
            "zz",  # cold start, label outside the catalog: off category, unseen; unseen context
            "a",  # context primary X (by confidence) = label's: on category; unseen context d;
                  # 4 views (a twice)
            "e"]  # context outside the catalog: unseen context; unseen label e; 2 views
  return EvalRequests(
      inputs={f.HISTORY_ITEM_IDS: _strings(histories, 3),
              **request_context.context_arrays(SESSIONS, 3, 2)},
      labels=np.array(labels, dtype=object),
      user_ids=np.array(["u1", "u1", "u2", "u3", "u2", "u4"], dtype=object),
      timestamps=np.arange(6, dtype=np.int64), contexts=SESSIONS)


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
              m.UNSEEN_CONTEXT: [0, 0, 0, 1, 1, 1],
              m.SESSION_1: [1, 0, 0, 1, 0, 0],
              m.SESSION_2_3: [0, 1, 0, 0, 0, 1],
              m.SESSION_4_PLUS: [0, 0, 0, 0, 1, 0]}
  for name, rows in expected.items():
    np.testing.assert_array_equal(masks[name], np.array(rows, bool), err_msg=name)


def test_session_length_slices_partition_the_real_context_rows():
  lengths = np.array([0, 1, 2, 3, 4, 8, 1, 0, 5])
  has = lengths > 0
  has[6] = False  # a view without categories: no real context
  buckets = methods.session_length_buckets(lengths, has)
  assert list(buckets) == [m.SESSION_1, m.SESSION_2_3, m.SESSION_4_PLUS]
  np.testing.assert_array_equal(np.sum(list(buckets.values()), axis=0), has)  # each row once
  np.testing.assert_array_equal(buckets[m.SESSION_1], [0, 1, 0, 0, 0, 0, 0, 0, 0])
  np.testing.assert_array_equal(buckets[m.SESSION_2_3], [0, 0, 1, 1, 0, 0, 0, 0, 0])
  np.testing.assert_array_equal(buckets[m.SESSION_4_PLUS], [0, 0, 0, 0, 1, 1, 0, 0, 1])


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


def test_context_weights_read_the_most_recent_view_or_every_view_by_recency():
  contexts = [Context((_view("c"), _view("a"), _view("b"), _view("d"))), NO_CONTEXT,
              Context((View("", ("Y", "W"), (0.5, 0.9)),))]  # W: not a catalog category
  np.testing.assert_allclose(methods.context_weights(contexts, _catalog()),
                             [[0, 1.0, 0], [0, 0, 0], [0, 0.5, 0]])
  # Session: view j weighs 2^-j: X 0.5 (a) + 0.25 (b) + 0.125 * 0.4 (d), Y 1 (c) + 0.125 * 0.6.
  np.testing.assert_allclose(methods.context_weights(contexts, _catalog(), None),
                             [[0.8, 1.075, 0], [0, 0, 0], [0, 0.5, 0]])
  np.testing.assert_allclose(methods.context_weights(contexts, _catalog(), 2)[0], [0.5, 1, 0])
  assert baselines.recency_weight(3) == 0.125


def test_pinned_positions_are_the_distinct_catalogued_views_in_order():
  pinned = methods.pinned_positions(SESSIONS, _catalog())
  np.testing.assert_array_equal(pinned, [[2, -1, -1], [0, 1, 2], [-1, -1, -1], [4, -1, -1],
                                         [3, 0, 1], [-1, 4, -1]])  # zz is not catalogued
  np.testing.assert_array_equal(methods.pinned_positions(SESSIONS, _catalog(), 1)[:, 0],
                                methods.context_positions(_requests(), _catalog()))
  np.testing.assert_array_equal(methods.pinned_positions(SESSIONS, _catalog(), 0), -np.ones((6, 1)))


def test_session_views_pins_the_session_then_ranks_its_categories_by_recency():
  requests, catalog = _requests(), _catalog()
  has = requests.has_context
  contexts = [c for c, kept in zip(SESSIONS, has) if kept]
  counts = np.array([1, 5, 0, 3, 2])
  positions = catalog.positions(requests.labels)
  popularity = baselines.popularity_ranks(counts, positions)
  ranks = methods.context_baseline_ranks(contexts, catalog, counts, positions[has], popularity)
  assert set(ranks) == {m.CONTEXT_POPULARITY, m.LAST_VIEWED, m.SESSION_VIEWS}
  # Row 1 (a, b, c; label c): session_views pins all three, c 3rd; the others pin a (or none)
  # and rank X first by popularity: b, a, then d (3), e (2), c (0) last.
  # Row 4 (d, a, b, a; label a): d, a, b pinned, a 2nd; last_viewed pins d, then d's X by
  # popularity: b, a. Row 0 (c; label d): c pinned, then d, its category's; context_popularity
  # puts d (Y, 3 conversions) before c (Y, none). Row 5 (zz, e; label e): e first everywhere.
  np.testing.assert_array_equal(ranks[m.SESSION_VIEWS][m.REAL_CONTEXT], [2, 3, np.inf, 2, 1])
  np.testing.assert_array_equal(ranks[m.LAST_VIEWED][m.REAL_CONTEXT], [2, 5, np.inf, 3, 1])
  np.testing.assert_array_equal(ranks[m.CONTEXT_POPULARITY][m.REAL_CONTEXT], [1, 5, np.inf, 2, 1])
  for method in ranks:
    np.testing.assert_array_equal(ranks[method][m.NO_CONTEXT], popularity)


def _identity_model(width: int):
  """signatures of a model whose user embedding is its input `user` (serving_default)."""
  def serve(*, user):
    return {f.USER_EMBEDDING: tf.identity(user)}
  spec = tf.TensorSpec([None, width], tf.float32)
  return {f.SIGNATURE_SERVING_DEFAULT: tf.function(serve).get_concrete_function(user=spec)}


def test_the_contextual_model_pins_the_session_views_as_the_service_does():
  rng = np.random.default_rng(3)
  catalog_ids = np.array([f"i{i}" for i in range(30)], dtype=object)
  items, users = rng.normal(size=(30, 4)), rng.normal(size=(40, 4)).astype(np.float32)
  ids = np.append(catalog_ids, "zz")  # zz: a view the catalog does not know
  contexts = [Context(tuple(View(str(i), ("X",), (1.0,)) for i in rng.choice(ids, rng.integers(
      0, 6)))) for _ in range(40)]
  labels = rng.choice(ids, 40)
  positions = pd.Index(catalog_ids).get_indexer(labels)
  catalog = methods.Catalog(pd.DataFrame({f.ITEM_ID: catalog_ids}), np.zeros(30, np.int64),
                            {"X": 0}, pd.Index(catalog_ids), np.zeros(30, np.int64))
  for views in (1, 3, 8):
    pinned = methods.pinned_positions(contexts, catalog, views)
    ranks = methods.model_ranks(_identity_model(4), items, np.zeros(30, np.int64),
                                {"user": users}, positions, pinned)
    for row in range(40):
      served = list(request_context.pinned_items(contexts[row], (), views))
      served = [i for i in served if i in set(catalog_ids)]
      order = served + [i for i in catalog_ids[np.argsort(-(items @ users[row]))]
                        if i not in served]
      expected = order.index(labels[row]) + 1 if labels[row] in order else np.inf
      assert ranks[row] == expected, (views, row)


class _FlatModel:
  """A model whose every score ties (ranks are catalog order), reading `views` context views."""

  def __init__(self, views: int):
    def serve(**inputs):
      return {f.USER_EMBEDDING: tf.zeros([tf.shape(inputs[f.HISTORY_ITEM_IDS])[0], 2])}

    def embed(**inputs):
      return {f.ITEM_EMBEDDING: tf.zeros([tf.shape(inputs[f.ITEM_ID])[0], 2])}

    text = lambda *shape: tf.TensorSpec([None, *shape], tf.string)  # noqa: E731
    context = {f.CONTEXT_ITEM_ID: text(views), f.CONTEXT_CATEGORIES: text(views, 2),
               f.CONTEXT_AGE_SECONDS: tf.TensorSpec([None, views], tf.int64),
               f.CONTEXT_CONFIDENCES: tf.TensorSpec([None, views, 2], tf.float32)}
    self.signatures = {
        f.SIGNATURE_SERVING_DEFAULT: tf.function(serve).get_concrete_function(
            **{f.HISTORY_ITEM_IDS: text(3)}, **(context if views else {})),
        f.SIGNATURE_EMBED_ITEMS: tf.function(embed).get_concrete_function(
            **{f.ITEM_ID: tf.TensorSpec([None], tf.string), f.ITEM_CATEGORIES: text(2),
               f.ITEM_CONFIDENCES: tf.TensorSpec([None, 2], tf.float32)})}


def test_all_ranks_pin_the_session_views_the_model_reads(tmp_path):
  requests, catalog = _requests(), _catalog()
  requests.inputs.update(request_context.context_arrays(SESSIONS, 2, 2))  # the model reads 2
  counts = np.array([1, 5, 0, 3, 2])
  ranks = methods.all_ranks(_FlatModel(2), _FlatModel(0), requests, catalog, counts,
                            str(tmp_path))
  assert set(ranks) == set(m.MODEL_METHODS + m.BASELINE_METHODS)  # no ground truth: no oracle
  # Labels d c a zz a e; real-context rows 0 1 3 4 5. Ties: catalog order a b c d e, after the
  # distinct items of the first 2 views: c | a, b | e | d, a | zz, e.
  np.testing.assert_array_equal(ranks[m.CONTEXTUAL][m.REAL_CONTEXT], [4, 3, np.inf, 2, 1])
  np.testing.assert_array_equal(ranks[m.HISTORY_ONLY][m.REAL_CONTEXT], [4, 3, np.inf, 1, 5])
  np.testing.assert_array_equal(ranks[m.CONTEXTUAL][m.NO_CONTEXT], [4, 3, 1, np.inf, 1, 5])
  np.testing.assert_array_equal(ranks[m.SESSION_VIEWS][m.REAL_CONTEXT], [2, 3, np.inf, 2, 1])


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
  seen = {}

  def top_k(truth, conversions, k, **session):
    seen.update(session)
    return {n: top for n in names}

  monkeypatch.setattr(oracle, "oracle_top_k", top_k)
  ranks = methods.oracle_ranks(str(tmp_path), requests)
  # The context oracles see each example's whole logged session, (item, seconds ago) per view.
  assert seen["views_kept"] == f.DEFAULT_SESSION_VIEWS and len(seen["sessions"]) == 6
  assert seen["sessions"][1] == [("a", 60), ("b", 90), ("c", 200)] and seen["sessions"][2] == []
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
