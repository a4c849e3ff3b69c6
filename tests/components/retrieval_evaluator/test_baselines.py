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


def _pinned_first_by_hand(order: list, pinned: list, label: int) -> float:
  """The label's rank in `order` (catalog rows, best first) once `pinned` go first, in order:
  request_context.pinned_items' rule written out."""
  front = []
  for item in pinned:
    if item >= 0 and item not in front:
      front.append(item)
  final = front + [item for item in order if item not in front]
  return final.index(label) + 1.0 if label >= 0 else np.inf


def test_pinned_first_matches_a_brute_force_order_on_random_cases():
  rng = np.random.default_rng(11)
  for case in range(200):
    size, width, rows = rng.integers(1, 9), rng.integers(1, 6), rng.integers(1, 5)
    scores = rng.integers(0, 3, size=(rows, size)).astype(float)  # ties
    pins = rng.integers(-1, size, size=(rows, width))  # repeats and -1 slots
    labels = rng.integers(-1, size, size=rows)
    labels[0] = pins[0, -1]  # the label often pinned (or -1: not in the catalog)
    ranks = baselines.pinned_first(ranks_from_scores(scores, labels),
                                   np.stack([ranks_from_scores(scores, pins[:, j])
                                             for j in range(width)], axis=1), pins, labels)
    for row in range(rows):
      order = list(np.lexsort((np.arange(size), -scores[row])))
      expected = _pinned_first_by_hand(order, list(pins[row]), labels[row])
      assert ranks[row] == expected, (case, row, scores[row], pins[row], labels[row])


def test_pinned_first_rejects_a_pinned_row_per_label_mismatch():
  with pytest.raises(ValueError, match="pinned positions and ranks"):
    baselines.pinned_first(np.ones(2), np.ones((3, 2)), np.zeros((3, 2)), np.zeros(2))
  with pytest.raises(ValueError, match="pinned positions and ranks"):
    baselines.pinned_first(np.ones(2), np.ones((2, 1)), np.zeros((2, 2)), np.zeros(2))


def test_session_views_pins_every_view_then_weighs_their_categories_by_recency():
  # Session, most recent first: item 3 (category 2), item 0 (category 0), item 3 again.
  # Weights: category 2: 1 + 0.25 (2^-2), category 0: 0.5. Pinned 3, 0; then 5 (1.25 * 3),
  # 2 (0.5 * 6), then 1 and 4 (9 conversions each, no weight: by the tie-break).
  weights = np.array([[0.5, 0.0, 1.25]] * 6)
  pinned = np.array([[3, 0, 3]] * 6)
  labels = np.array([3, 0, 5, 2, 1, 4])
  ranks = baselines.session_views_ranks(COUNTS, PRIMARY, weights, pinned, labels, batch_size=4)
  np.testing.assert_array_equal(ranks, [1, 2, 3, 4, 5, 6])
  # last_viewed on the same session: 3 pinned, 5 (its category), then popularity 1, 4, 0, 2.
  last = baselines.last_viewed_ranks(COUNTS, PRIMARY, np.array([[0, 0, 1.0]] * 6),
                                     pinned[:, 0], labels)
  np.testing.assert_array_equal(last, [1, 5, 2, 6, 3, 4])
  no_session = baselines.session_views_ranks(COUNTS, PRIMARY, np.zeros((2, 3)),
                                             -np.ones((2, 2)), np.array([1, -1]))
  np.testing.assert_array_equal(no_session, [1, np.inf])  # popularity


def test_context_ranks_rank_every_column_of_a_position_matrix_like_a_label():
  rng = np.random.default_rng(4)
  weights = rng.random((7, 3)) * (rng.random((7, 3)) < 0.6)
  sets = rng.integers(-1, 6, size=(7, 4))
  labels, matrix = baselines.context_ranks(COUNTS, PRIMARY, weights, [sets[:, 0], sets],
                                           batch_size=3)
  assert matrix.shape == (7, 4)
  np.testing.assert_array_equal(matrix[:, 0], labels)
  for j in range(4):
    np.testing.assert_array_equal(
        matrix[:, j], baselines.context_popularity_ranks(COUNTS, PRIMARY, weights, sets[:, j]))
