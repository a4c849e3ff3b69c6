"""Metrics from label ranks: hand-computed values, tie rules, top-K lists, bootstrap intervals."""
import math

import numpy as np
import pytest

from ctxrec.components.retrieval_evaluator import metrics as m


def test_hand_computed_metrics():
  result = m.metrics_from_ranks(np.array([1, 3, 12, 150, np.inf]))
  assert result["recall@10"] == 0.4
  assert result["recall@20"] == 0.6
  assert result["recall@50"] == 0.6
  assert result["recall@100"] == 0.6
  assert result["ndcg@10"] == (1 + 1 / math.log2(4)) / 5
  assert result["ndcg@100"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(13)) / 5)
  assert result["mrr"] == (1 + 1 / 3 + 1 / 12) / 5
  assert result["n"] == 5 and isinstance(result["n"], int)
  assert set(result) == set(m.METRIC_NAMES) | {m.COUNT}


def test_mrr_is_cut_at_max_k_and_empty_ranks_give_zeros():
  assert m.metrics_from_ranks(np.array([101.0]))["mrr"] == 0.0
  assert m.metrics_from_ranks(np.array([100.0]))["mrr"] == 0.01
  empty = m.metrics_from_ranks(np.zeros(0))
  assert empty == {**{name: 0.0 for name in m.METRIC_NAMES}, "n": 0}


def test_ranks_from_scores_breaks_ties_towards_the_earlier_column_and_misses_unknown_labels():
  scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1],
                     [0.5, 0.9, 0.5, 0.5, 0.1],
                     [0.5, 0.9, 0.5, 0.5, 0.1],
                     [0.5, 0.9, 0.5, 0.5, 0.1]])
  ranks = m.ranks_from_scores(scores, np.array([0, 3, 4, -1]))
  np.testing.assert_array_equal(ranks, [2.0, 4.0, 5.0, np.inf])
  assert m.ranks_from_scores(np.zeros((0, 5)), np.zeros(0, int)).shape == (0,)


def test_ranks_from_scores_matches_a_brute_force_sort():
  rng = np.random.default_rng(3)
  scores = rng.integers(0, 4, size=(30, 25)).astype(np.float32)  # many ties
  positions = rng.integers(0, 25, size=30)
  order = [sorted(range(25), key=lambda i, row=row: (-row[i], i)) for row in scores]
  expected = [order[r].index(p) + 1 for r, p in enumerate(positions)]
  np.testing.assert_array_equal(m.ranks_from_scores(scores, positions), expected)


def test_ranks_from_scores_rejects_bad_input():
  with pytest.raises(ValueError, match="NaN"):
    m.ranks_from_scores(np.array([[np.nan, 1.0]]), np.array([0]))
  with pytest.raises(ValueError, match="< N"):
    m.ranks_from_scores(np.ones((1, 2)), np.array([2]))
  with pytest.raises(ValueError, match="shape"):
    m.ranks_from_scores(np.ones((2, 2)), np.array([0]))


def test_ranks_from_top_k():
  top = np.array([["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"]], dtype=object)
  ranks = m.ranks_from_top_k(top, np.array(["b", "a", "z"], dtype=object))
  np.testing.assert_array_equal(ranks, [2.0, 3.0, np.inf])
  np.testing.assert_array_equal(m.ranks_from_top_k(np.array([[7, 8]]), np.array([8])), [2.0])
  np.testing.assert_array_equal(m.ranks_from_top_k(np.zeros((2, 0)), np.array([1, 2])),
                                [np.inf, np.inf])


def test_bootstrap_contains_the_estimate_and_narrows_with_more_data():
  rng = np.random.default_rng(0)
  small, large = rng.integers(1, 200, size=100), rng.integers(1, 200, size=10000)
  widths = []
  for ranks in (small, large):
    point = m.metrics_from_ranks(ranks)
    intervals = m.bootstrap_intervals(ranks, samples=100, seed=1)
    assert set(intervals) == set(m.METRIC_NAMES)
    for name, (lo, hi) in intervals.items():
      assert lo <= point[name] <= hi
    widths.append(intervals["recall@50"][1] - intervals["recall@50"][0])
  assert widths[1] < widths[0] / 3
  assert m.bootstrap_intervals(small, 50, seed=4) == m.bootstrap_intervals(small, 50, seed=4)


def test_bootstrap_of_no_examples_and_bad_parameters():
  assert m.bootstrap_intervals(np.zeros(0)) == {name: (0.0, 0.0) for name in m.METRIC_NAMES}
  with pytest.raises(ValueError, match="samples"):
    m.bootstrap_intervals(np.ones(3), samples=0)
  with pytest.raises(ValueError, match="level"):
    m.bootstrap_intervals(np.ones(3), level=1.0)


def test_method_and_mode_names_are_defined_once():
  assert set(m.MODEL_METHODS + m.BASELINE_METHODS + m.ORACLE_METHODS) == set(m.METHODS)
  assert m.BASELINE_METHODS == ("history_only", "popularity", "context_popularity")
  assert m.ORACLE_METHODS == ("oracle_contextual", "oracle_history")
  assert m.MODES == ("real_context", "no_context")
