"""The score's explicit terms: exact category boosts that never collide, the history's top
categories in the state, and an untrained score that is the heuristics it encodes."""
import numpy as np
import tensorflow as tf

from ctxrec.trainer import retrieval_loss, score_priors
from ctxrec.transform import category_keys

TEMPERATURE = 0.05


def test_category_keys_are_exact_for_a_million_categories_and_survive_the_float_state():
  names = np.array([f"c{i:07d}" for i in range(1_000_000)], dtype=object)
  keys = category_keys.keys_of(names)
  assert len(np.unique(keys)) == len(names) and keys.min() > 0 and keys.max() < 2**48
  assert category_keys.keys_of([""])[0] == category_keys.NO_KEY
  halves = category_keys.to_floats(tf.constant(keys[:1000]))
  assert halves.dtype == tf.float32
  np.testing.assert_array_equal(category_keys.from_floats(halves).numpy(), keys[:1000])


def test_primary_key_is_the_highest_confidence_category_in_any_order():
  categories = tf.constant([["a", "b", ""], ["", "", ""], ["b", "c", "a"]])
  confidences = tf.constant([[0.2, 0.9, 0.0], [0.0, 0.0, 0.0], [0.1, 0.3, 0.8]])
  expected = category_keys.keys_of(["b", "", "a"])
  np.testing.assert_array_equal(category_keys.primary_keys(categories, confidences).numpy(),
                                expected)


def test_top_categories_count_each_key_once_most_frequent_then_most_recent():
  history = tf.constant(category_keys.keys_of(["a", "b", "a", "c", "b", "a", "", ""]).reshape(
      1, -1))
  keys, shares = score_priors.top_categories(history, 4)
  a, b, c = category_keys.keys_of(["a", "b", "c"])
  assert keys.numpy().tolist() == [[a, b, c, 0]]
  np.testing.assert_allclose(shares.numpy(), [[3 / 6, 2 / 6, 1 / 6, 0.0]], rtol=1e-6)
  empty_keys, empty_shares = score_priors.top_categories(tf.zeros([1, 8], tf.int64), 4)
  assert not empty_keys.numpy().any() and not empty_shares.numpy().any()


def test_the_tail_round_trips_through_the_state():
  raw = tf.constant([["x", "y", "x", ""] + [""] * 6])
  tail = score_priors.ScorePriors.history_tail(raw)
  assert tail.shape == (1, score_priors.TAIL_WIDTH)
  keys, shares = score_priors.unpack_tail(tf.concat([tf.zeros([1, 5]), tail], axis=1))
  assert keys.numpy()[0, :2].tolist() == category_keys.keys_of(["x", "y"]).tolist()
  np.testing.assert_allclose(shares.numpy()[0, :3], [2 / 3, 1 / 3, 0.0], rtol=1e-6)


def test_batch_boosts_add_the_weights_of_matching_keys_only():
  boost_keys = tf.constant([[5, 7, 0], [7, 7, 9]], tf.int64)
  weights = tf.constant([[1.0, 2.0, 4.0], [0.5, 0.25, 8.0]])
  items = tf.constant([7, 5, 0, 3], tf.int64)
  np.testing.assert_allclose(score_priors.batch_boosts(boost_keys, weights, items).numpy(),
                             [[2.0, 1.0, 0.0, 0.0], [0.75, 0.0, 0.0, 0.0]])
  np.testing.assert_allclose(
      category_keys.boost_scores(boost_keys.numpy(), weights.numpy(), items.numpy()),
      [[2.0, 1.0, 0.0, 0.0], [0.75, 0.0, 0.0, 0.0]])


def _priors(log_popularity):
  probability = tf.constant(np.exp(log_popularity), tf.float32)
  return score_priors.ScorePriors(label_probability=probability, temperature=TEMPERATURE)


def _views(values):
  """A session [S, K] of one view ([K] values) or of several ([S, K])."""
  values = list(values)
  return values if values and isinstance(values[0], (list, tuple)) else [values]


def _softplus(x):
  """The boosts' softplus, in numpy, for the expected logits."""
  return np.log1p(np.exp(x))


def _untrained_logits(history_categories, context_categories, context_confidences,
                      item_categories, has_context=True):
  """Logits of an untrained score (learned towers know nothing) over items 1..N."""
  log_popularity = np.log([0.01, 0.4, 0.3, 0.2, 0.1])  # item 0 is padding
  priors = _priors(log_popularity)
  items = priors.candidate(tf.zeros([4, 3]), tf.constant([1, 2, 3, 4], tf.int64))
  state = tf.concat([tf.zeros([1, 6]), priors.history_tail(tf.constant([history_categories]))],
                    axis=1)
  query, keys, weights = priors.query(
      tf.zeros([1, 3]), tf.zeros([1, 5]), state, tf.constant([_views(context_categories)]),
      tf.constant([_views(context_confidences)], tf.float32), tf.constant([has_context]))
  item_keys = category_keys.keys(tf.constant(item_categories))
  boosts = score_priors.batch_boosts(keys, weights, item_keys)
  return ((query @ tf.transpose(items) + boosts) / TEMPERATURE).numpy()[0]


def test_untrained_score_is_the_context_category_then_history_then_popularity():
  items = ["rare", "hist", "ctx", "ctx"]  # primary categories of items 1..4
  logits = _untrained_logits(["hist", "hist", "", ""], ["ctx", ""], [0.8, 0.0], items)
  assert list(np.argsort(-logits)) == [2, 3, 1, 0]  # ctx by popularity, then hist, then rare
  g, w_pop, b_ctx, b_hist, _, _ = score_priors.INITIAL_WEIGHTS
  np.testing.assert_allclose(logits[2] - logits[3], w_pop * np.log(0.2 / 0.1), rtol=1e-4)
  np.testing.assert_allclose(logits[2] - logits[0], _softplus(b_ctx + np.log(0.8))
                             + w_pop * np.log(0.2 / 0.4), rtol=1e-4)
  without = _untrained_logits(["hist", "hist", "", ""], ["ctx", ""], [0.8, 0.0], items,
                              has_context=False)
  assert list(np.argsort(-without)) == [1, 0, 2, 3]  # history's category, then popularity


def test_untrained_history_boost_only_tilts_popularity_inside_a_session():
  """With a session the history boost is b_hist_ctx's (small), so it cannot reorder the
  session's categories as the no-session boost b_hist would."""
  items = ["rare", "hist", "ctx", "ctx"]
  _, _, _, b_hist, b_hist_ctx, _ = score_priors.INITIAL_WEIGHTS
  assert b_hist_ctx < b_hist
  for has_context, boost in ((True, b_hist_ctx), (False, b_hist)):
    logits = _untrained_logits(["hist", "hist", "", ""], ["ctx", ""], [0.8, 0.0], items,
                               has_context=has_context)
    np.testing.assert_allclose(logits[1] - logits[0], _softplus(boost) + np.log(0.3 / 0.4),
                               rtol=1e-4)


def test_untrained_session_score_halves_each_earlier_views_weight():
  """As the session_views baseline: sum_j 2^-j conf_j(c) (counts + 1), in log space."""
  items = ["rare", "old", "now", "now"]
  logits = _untrained_logits(["", "", "", ""], [["now", ""], ["old", ""], ["old", ""]],
                             [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], items)
  b_ctx = score_priors.INITIAL_WEIGHTS[2]
  np.testing.assert_allclose(logits[2] - logits[1], _softplus(b_ctx) - _softplus(
      b_ctx + np.log(0.5 + 0.25)) + np.log(0.2 / 0.3), rtol=1e-4)
  # two earlier views (0.5 + 0.25) of a category whose item is 1.5x as popular outweigh one now
  assert list(np.argsort(-logits)) == [1, 2, 3, 0]


def test_in_batch_softmax_masks_accidental_hits_and_corrects_for_sampling():
  queries = tf.eye(3)
  candidates = tf.constant([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0]])
  ids = tf.constant([4, 5, 4], tf.int64)  # rows 0 and 2 share their positive
  boosts = tf.zeros([3, 3])
  loss = retrieval_loss.in_batch_softmax(queries, candidates, boosts, ids, 1.0)
  logits = np.array([[1, 0, -1e9], [0, 1, 0], [-1e9, 0, 0]], np.float64)
  expected = np.mean([np.log(np.exp(row).sum()) - row[i] for i, row in enumerate(logits)])
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
  probability = tf.constant([0.5, 0.25, 0.5])
  corrected = retrieval_loss.in_batch_softmax(queries, candidates, boosts, ids, 1.0, probability)
  logits -= np.log([0.5, 0.25, 0.5])
  logits[0, 2] = logits[2, 0] = -1e9
  expected = np.mean([np.log(np.exp(row).sum()) - row[i] for i, row in enumerate(logits)])
  np.testing.assert_allclose(corrected.numpy(), expected, rtol=1e-5)
  boosted = retrieval_loss.in_batch_softmax(queries, candidates, tf.eye(3) * 5.0, ids, 1.0)
  assert boosted.numpy() < loss.numpy()  # a boost on the positive is part of the score
