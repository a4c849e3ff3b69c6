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
  assert m.BASELINE_METHODS == ("history_only", "popularity", "context_popularity",
                                "last_viewed", "session_views")
  assert m.ORACLE_METHODS == ("oracle_contextual", "oracle_context_item",
                              "oracle_context_categories", "oracle_history")
  assert m.MODES == ("real_context", "no_context")
  assert m.SLICES == ("cold_start", "context_off_category", "unseen_label", "label_seen_1",
                      "label_seen_2_9", "label_seen_10_plus", "unseen_context", "session_1",
                      "session_2_3", "session_4_plus")
  assert m.SESSION_LENGTH_BUCKETS == {"session_1": 1, "session_2_3": 2, "session_4_plus": 4}
  assert m.LABEL_SEEN_BUCKETS == {"unseen_label": 0, "label_seen_1": 1, "label_seen_2_9": 2,
                                  "label_seen_10_plus": 10}


def test_every_oracle_and_context_mode_has_a_name_here():
  from ctxrec.synthetic import oracle
  from ctxrec.trainer.config import CONTEXT_MODES
  assert set(oracle.ORACLES) <= set(m.ORACLE_METHODS)
  assert set(m.CONTEXT_MODE_CEILINGS) <= set(CONTEXT_MODES)
  assert set(m.CONTEXT_MODE_CEILINGS.values()) <= set(m.ORACLE_METHODS)


def _width(interval):
  return interval[1] - interval[0]


def _clustered(rng):
  """60 users with one example each (hit or miss at random), and one user with 300 hits."""
  ranks = np.concatenate([np.where(rng.random(60) < 0.3, 5.0, 500.0), np.full(300, 5.0)])
  users = np.concatenate([np.arange(60), np.full(300, 60)])
  return ranks, users


def test_intervals_resample_users_so_a_heavy_user_widens_them():
  ranks, users = _clustered(np.random.default_rng(0))
  by_user = m.bootstrap_intervals(ranks, 500, seed=1, users=users)["recall@100"]
  by_example = m.bootstrap_intervals(ranks, 500, seed=1)["recall@100"]
  assert _width(by_user) > 4 * _width(by_example)  # the heavy user is in or out as a whole
  point = m.metrics_from_ranks(ranks)["recall@100"]
  assert by_user[0] <= point <= by_user[1]


def test_duplicating_every_users_examples_changes_nothing_for_a_user_bootstrap():
  # Same users, each with twice the same examples: a replicate draws the same users, so every
  # replicate mean, hence the interval, is identical. Resampling examples would narrow it.
  rng = np.random.default_rng(2)
  users = rng.integers(0, 40, size=120)
  ranks = rng.integers(1, 200, size=120).astype(float)
  twice_ranks, twice_users = np.tile(ranks, 2), np.tile(users, 2)
  once = m.bootstrap_intervals(ranks, 300, seed=3, users=users)
  twice = m.bootstrap_intervals(twice_ranks, 300, seed=3, users=twice_users)
  for name in m.METRIC_NAMES:
    np.testing.assert_allclose(once[name], twice[name], rtol=1e-12)
  by_example = m.bootstrap_intervals(ranks, 300, seed=3)["recall@100"]
  twice_by_example = m.bootstrap_intervals(twice_ranks, 300, seed=3)["recall@100"]
  assert _width(twice_by_example) < 0.85 * _width(by_example)


def test_a_replicate_draws_users_not_examples():
  users = np.array(["b", "a", "a", "c", "a", "c"], dtype=object)
  resample = m.UserResample(users, samples=7, seed=0)
  weights = np.concatenate(list(resample.weights()))
  assert weights.shape == (7, 3) and (weights.sum(axis=1) == 3).all()  # 3 draws of 3 users
  more = m.UserResample(np.concatenate([users, ["a"] * 50]), samples=7, seed=0)
  np.testing.assert_array_equal(np.concatenate(list(more.weights())), weights)
  # totals: a user's examples count together, as often as the user is drawn
  totals = resample.totals(np.ones(users.size))[:, 0]
  np.testing.assert_array_equal(totals, weights @ np.array([3, 1, 2]))  # a, b, c
  np.testing.assert_array_equal(resample.totals(np.ones(users.size)),
                                resample.totals(np.ones(users.size)))  # replayed draws


def test_weights_come_in_bounded_blocks_and_replay_with_or_without_the_cache(monkeypatch):
  users = np.arange(50) % 17
  cached = m.UserResample(users, samples=9, seed=5)
  first, second = (np.concatenate(list(cached.weights())) for _ in range(2))
  np.testing.assert_array_equal(first, second)
  monkeypatch.setattr(m, "_RESAMPLE_BUDGET", 17 * 2)  # 2 replicates per block
  monkeypatch.setattr(m, "_CACHE_BUDGET", 0)  # never cached
  resample = m.UserResample(users, samples=9, seed=5)
  assert [len(b) for b in resample.weights()] == [2, 2, 2, 2, 1]
  np.testing.assert_array_equal(resample.totals(np.ones(50)), resample.totals(np.ones(50)))


def test_paired_lift_of_a_method_over_itself_is_exactly_zero():
  rng = np.random.default_rng(4)
  ranks = rng.integers(1, 300, size=200).astype(float)
  stats = m.statistics({m.CONTEXTUAL: ranks, m.POPULARITY: ranks.copy()},
                       rng.integers(0, 50, size=200), samples=200)
  assert stats.lifts[m.POPULARITY]["lift"] == 0.0
  assert stats.lifts[m.POPULARITY]["interval"] == (0.0, 0.0)  # unpaired, it would be wide
  assert stats.lifts[m.POPULARITY]["n"] == 200 and stats.lifts[m.POPULARITY]["users"] <= 50


def test_paired_lift_by_hand_and_its_interval_brackets_it():
  ranks = np.array([1, 1, 1, 500, 500, 500, 1, 500], dtype=float)
  base = np.array([1, 500, 500, 500, 500, 500, 1, 500], dtype=float)
  users = np.arange(8)
  lift = m.statistics({m.CONTEXTUAL: ranks, m.LAST_VIEWED: base}, users, 400).lifts
  assert set(lift) == {m.LAST_VIEWED}
  assert lift[m.LAST_VIEWED]["lift"] == pytest.approx(4 / 2 - 1)
  lo, hi = lift[m.LAST_VIEWED]["interval"]
  assert 0.0 <= lo <= 1.0 <= hi  # the model never does worse on a user here


def test_relative_lift_edges_and_statistics_of_nothing():
  np.testing.assert_array_equal(m.relative_lift([3, 2, 0, 1], [2, 0, 0, 2]),
                                [0.5, np.inf, 0.0, -0.5])
  empty = m.statistics({m.CONTEXTUAL: np.zeros(0), m.POPULARITY: np.zeros(0)}, np.zeros(0))
  assert empty.lifts == {} and empty.metrics[m.CONTEXTUAL]["n"] == 0
  assert m.percent(None) == m.percent(np.inf) == "+inf" and m.percent(-0.125) == "-12.5%"
  with pytest.raises(ValueError, match="ranks for"):
    m.statistics({m.CONTEXTUAL: np.ones(3)}, np.arange(2))
