"""The score's explicit terms: fixed category codes, per-request weights, and the dot product."""
import numpy as np
import pytest
import tensorflow as tf

from ctxrec.trainer import score_priors
from ctxrec.trainer.config import TrainerConfig

TEMPERATURE = TrainerConfig().temperature


def test_codes_are_orthonormal_when_the_width_allows_and_padding_is_zero():
  codes = score_priors.category_codes(rows=21, dim=32, seed=0)
  assert codes.shape == (21, 32) and not codes[0].any()
  np.testing.assert_allclose(codes[1:] @ codes[1:].T, np.eye(20), atol=1e-5)


def test_codes_beyond_the_width_are_unit_and_nearly_orthogonal():
  codes = score_priors.category_codes(rows=501, dim=64, seed=0)
  np.testing.assert_allclose(np.linalg.norm(codes[1:], axis=1), 1.0, atol=1e-5)
  overlaps = (codes[1:] @ codes[1:].T)[~np.eye(500, dtype=bool)]
  assert abs(overlaps.mean()) < 0.01 and overlaps.std() == pytest.approx(1 / 8, rel=0.1)


def test_primary_category_is_the_highest_confidence_one_in_any_order():
  ids = tf.constant([[4, 2, 0], [0, 0, 0], [3, 0, 0]], tf.int64)
  confidences = tf.constant([[0.3, 0.7, 0.9], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
  assert score_priors.primary_category(ids, confidences).numpy().tolist() == [2, 0, 3]


def test_weights_start_at_their_initial_values_and_stay_positive():
  layer = score_priors.PriorWeights(initial=(1.0, 2.0, 0.5, 3.0))
  weights = layer(tf.random.normal([4, 10])).numpy()
  np.testing.assert_allclose(weights, np.tile([1.0, 2.0, 0.5, 3.0], (4, 1)), rtol=1e-5)


def _priors(log_popularity):
  probability = tf.constant(np.exp(log_popularity), tf.float32)
  return score_priors.ScorePriors(category_rows=6, dim=8, label_probability=probability,
                                  temperature=TEMPERATURE, seed=0)


def test_untrained_score_ranks_the_context_category_by_popularity_then_the_rest():
  log_popularity = np.log([0.01, 0.5, 0.2, 0.29])  # item 0 is padding
  priors = _priors(log_popularity)
  learned_items = np.zeros((3, 4), np.float32)  # the learned towers know nothing yet
  items = priors.candidate(learned_items, tf.constant([2, 3, 2], tf.int64),
                           tf.constant([1, 2, 3], tf.int64))
  history = tf.zeros([1, 5 + 8])  # an empty history: no category shares, no interests
  query = priors.query(tf.zeros([1, 4]), tf.zeros([1, 7]), history, tf.constant([3], tf.int64))
  logits = (query @ tf.transpose(items)).numpy()[0] / TEMPERATURE
  w_ctx, w_pop = score_priors.INITIAL_WEIGHTS[1:3]
  np.testing.assert_allclose(logits, w_pop * log_popularity[1:] + w_ctx * np.array([0, 1, 0]),
                             rtol=1e-5)
  assert list(np.argsort(-logits)) == [1, 0, 2]  # item 2 (the context's category), then 1, 3


def test_history_share_is_the_log_add_one_share_of_each_category():
  priors = _priors(np.zeros(4))
  share = priors.history_share(tf.constant([[1, 1, 2, 0], [0, 0, 0, 0]], tf.int64)).numpy()
  per_category = share @ priors.codes.numpy()[1:].T  # codes are orthonormal: exact shares
  expected = np.log(np.array([3, 2, 1, 1, 1]) * 5 / (3 + 5))  # 5 categories, 3 conversions
  np.testing.assert_allclose(per_category[0], expected, rtol=1e-5)
  np.testing.assert_allclose(share[1], 0.0, atol=1e-6)  # empty history: uniform, no term


def test_without_context_the_category_term_is_the_history_interests_only():
  priors = _priors(np.zeros(4))
  history = tf.random.normal([2, 5 + 8], seed=1)
  query = priors.query(tf.zeros([2, 4]), tf.zeros([2, 7]), history, tf.zeros([2], tf.int64))
  w_hist = score_priors.INITIAL_WEIGHTS[3]
  expected = w_hist * history[:, -8:] + priors.interests(history)
  np.testing.assert_allclose(query[:, 4:12] / TEMPERATURE, expected, rtol=1e-5, atol=1e-5)
