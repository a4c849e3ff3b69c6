"""Popularity baselines on a hand-built catalog, and against the generic score ranking."""
import numpy as np
import pytest

from ctxrec.components.retrieval_evaluator import baselines
from ctxrec.components.retrieval_evaluator.metrics import ranks_from_scores

# Six items: train conversion counts and primary category index (3 categories).
COUNTS = np.array([5, 9, 5, 0, 9, 2])
PRIMARY = np.array([0, 1, 0, 2, 1, 2])


def test_popularity_ranks_by_hand():
  # Order: item 1 (9), 4 (9, later), 0 (5), 2 (5, later), 5 (2), 3 (0).
  ranks = baselines.popularity_ranks(COUNTS, np.array([0, 1, 2, 3, 4, 5, -1]))
  np.testing.assert_array_equal(ranks, [3, 1, 4, 6, 2, 5, np.inf])


def test_popularity_matches_ranks_from_scores_on_a_random_case():
  rng = np.random.default_rng(5)
  counts = rng.integers(0, 6, size=200)  # many ties
  positions = rng.integers(-1, 200, size=300)
  expected = ranks_from_scores(np.tile(counts, (300, 1)), positions)
  np.testing.assert_array_equal(baselines.popularity_ranks(counts, positions), expected)


def test_context_popularity_ranks_by_hand():
  weights = np.array([
      [1.0, 0.0, 0.0],  # context A: category 0
      [1.0, 0.0, 0.0],
      [0.0, 0.2, 0.9],  # context B: category 2 strongly, category 1 weakly
      [0.0, 0.2, 0.9],
      [0.0, 0.0, 0.0],  # no context: plain popularity
      [1.0, 0.0, 0.0],  # label outside the catalog
  ])
  positions = np.array([2, 3, 3, 4, 5, -1])
  # A: items 0, 2 (score 6 each, 0 first), then popularity 1, 4, 5, 3.
  # B: 5 (0.9 * 3), 1 and 4 (0.2 * 10), 3 (0.9 * 1), then 0, 2.
  ranks = baselines.context_popularity_ranks(COUNTS, PRIMARY, weights, positions, batch_size=2)
  np.testing.assert_array_equal(ranks, [2, 6, 4, 3, 5, np.inf])


def test_context_popularity_without_any_context_is_popularity():
  positions = np.arange(6)
  ranks = baselines.context_popularity_ranks(COUNTS, PRIMARY, np.zeros((6, 3)), positions)
  np.testing.assert_array_equal(ranks, baselines.popularity_ranks(COUNTS, positions))


def test_items_without_a_primary_category_match_no_context():
  ranks = baselines.context_popularity_ranks(
      np.array([1, 3]), np.array([-1, 0]), np.array([[1.0], [1.0]]), np.array([0, 1]))
  np.testing.assert_array_equal(ranks, [2, 1])
  ranks = baselines.context_popularity_ranks(
      np.array([3, 1]), np.array([-1, 0]), np.array([[1.0]]), np.array([0]))
  np.testing.assert_array_equal(ranks, [2])


def test_context_popularity_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match="context_weights"):
    baselines.context_popularity_ranks(COUNTS, PRIMARY, np.zeros((2, 3)), np.array([0]))
  with pytest.raises(ValueError, match="item_primary"):
    baselines.context_popularity_ranks(COUNTS, PRIMARY, np.zeros((1, 2)), np.array([0]))


def test_last_viewed_puts_the_context_item_first_then_its_category_by_popularity():
  # Context item 2 (category 0): 2, then 0 (its category, by popularity), then 1, 4, 5, 3.
  # Context item 3 (category 2): 3, then 5, then 1, 4, 0, 2.
  weights = np.array([[1.0, 0, 0]] * 4 + [[0, 0, 1.0]] * 3)
  contexts = np.array([2, 2, 2, 2, 3, 3, 3])
  labels = np.array([2, 0, 1, 3, 3, 5, 2])
  ranks = baselines.last_viewed_ranks(COUNTS, PRIMARY, weights, contexts, labels, batch_size=3)
  np.testing.assert_array_equal(ranks, [1, 2, 3, 6, 1, 2, 6])
  related = baselines.context_popularity_ranks(COUNTS, PRIMARY, weights, labels)
  np.testing.assert_array_equal(related, [2, 1, 3, 6, 2, 1, 6])


def test_last_viewed_without_context_item_is_context_popularity_and_without_context_popularity():
  weights = np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 0]])
  contexts, labels = np.array([-1, -1, -1]), np.array([2, 2, -1])
  ranks = baselines.last_viewed_ranks(COUNTS, PRIMARY, weights, contexts, labels)
  np.testing.assert_array_equal(ranks, [2, 4, np.inf])


def test_last_viewed_matches_a_brute_force_order():
  rng = np.random.default_rng(8)
  counts, primary = rng.integers(0, 5, size=40), rng.integers(0, 4, size=40)
  weights = rng.random((25, 4)) * (rng.random((25, 4)) < 0.4)
  contexts, labels = rng.integers(-1, 40, size=25), rng.integers(-1, 40, size=25)
  everything = np.arange(40)
  expected = []
  for row in range(25):
    related = baselines.context_popularity_ranks(counts, primary, np.tile(weights[row], (40, 1)),
                                                 everything)
    order = list(np.argsort(related))
    if contexts[row] >= 0:
      order.remove(contexts[row])
      order.insert(0, contexts[row])
    expected.append(order.index(labels[row]) + 1 if labels[row] >= 0 else np.inf)
  ranks = baselines.last_viewed_ranks(counts, primary, weights, contexts, labels, batch_size=4)
  np.testing.assert_array_equal(ranks, expected)


def test_last_viewed_rejects_a_context_per_label_mismatch():
  with pytest.raises(ValueError, match="context_weights"):
    baselines.last_viewed_ranks(COUNTS, PRIMARY, np.zeros((2, 3)), np.array([0]), np.array([0, 1]))
