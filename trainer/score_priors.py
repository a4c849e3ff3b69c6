"""Explicit terms of the retrieval score: category log-odds and item popularity.

A dot-product retriever ranks by q·v alone. A few dimensions appended to both towers add terms to
that score which are right before any training:

  q·v / T = g * <h, i> / T  +  <w_ctx * code(context) + interests(history), code(item)>
                            +  w_pop * log P(item is a train label)
  interests(history) = w_hist * share(history) + U * history_state

`code` is a fixed unit vector per category (orthonormal up to `dim` categories), applied to the
primary (highest-confidence) category; `share` holds, in code space, the log add-one share of
each category in the user's history relative to a uniform share, so <share, code(c)> is > 0 for
the categories the user converted in; it travels at the end of the history state. <h, i> is the learned towers' cosine, U a learned projection of the state;
g, w_ctx, w_pop and w_hist are positive weights the context head computes per request, seeing
whether the history agrees with the context. On a short log the learned parts know little, yet
the score already ranks the viewed item's category, then the user's categories, by popularity:
the heuristics a team would write first. With more data the learned parts and the weights
take over.
"""
from typing import Sequence

import numpy as np
import tensorflow as tf

NUM_WEIGHTS = 4  # g, w_ctx, w_pop, w_hist
INITIAL_WEIGHTS = (1.0, 2.0, 1.0, 2.0)


def category_codes(rows: int, dim: int, seed: int) -> np.ndarray:
  """Unit codes per category id (row 0, padding, is zero): orthonormal when rows - 1 <= dim,
  otherwise random, whose inner products are about N(0, 1/dim)."""
  rng = np.random.default_rng(seed)
  gaussian = rng.standard_normal((max(rows - 1, 0), dim))
  if 1 < rows <= dim + 1:
    codes = np.linalg.qr(gaussian.T)[0].T
  else:
    codes = gaussian / np.maximum(np.linalg.norm(gaussian, axis=1, keepdims=True), 1e-12)
  return np.concatenate([np.zeros((1, dim)), codes]).astype(np.float32)


def primary_category(category_ids: tf.Tensor, confidences: tf.Tensor) -> tf.Tensor:
  """The highest-confidence category id per row of [B, K] ids (0 when a row has none), whatever
  order the caller listed them in."""
  scores = tf.where(category_ids > 0, confidences, -1.0)
  best = tf.argmax(scores, axis=1, output_type=tf.int32)
  return tf.gather(category_ids, best, batch_dims=1)


class PriorWeights(tf.keras.layers.Layer):
  """Per-request weights (g, w_ctx, w_pop, w_hist), positive, starting at `initial`."""

  def __init__(self, hidden_units: int = 32, initial: Sequence[float] = INITIAL_WEIGHTS,
               **kwargs):
    super().__init__(**kwargs)
    inverse_softplus = np.log(np.expm1(np.asarray(initial, np.float32)))
    self.hidden = tf.keras.layers.Dense(hidden_units, activation="relu")
    self.out = tf.keras.layers.Dense(
        NUM_WEIGHTS, kernel_initializer="zeros",
        bias_initializer=tf.keras.initializers.Constant(inverse_softplus))

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    return tf.nn.softplus(self.out(self.hidden(inputs)))


class ScorePriors(tf.keras.layers.Layer):
  """Appends the explicit terms to the learned user (query) and item (candidate) vectors."""

  def __init__(self, category_rows: int, dim: int, label_probability: tf.Tensor,
               temperature: float, seed: int, **kwargs):
    super().__init__(**kwargs)
    self.codes = tf.constant(category_codes(category_rows, dim, seed))
    self.label_probability = label_probability  # the model's table (log-Q uses it too)
    self.interests = tf.keras.layers.Dense(dim, use_bias=False, kernel_initializer="zeros",
                                           name="interests")
    self.weights_of_request = PriorWeights()
    self._temperature = temperature

  @property
  def dim(self) -> int:
    return int(self.codes.shape[1])

  def history_share(self, category_ids: tf.Tensor) -> tf.Tensor:
    """log of the add-one share of each category in a history [B, L] (0 = padding), relative to
    a uniform share, in code space: zero for an empty history."""
    rows = int(self.codes.shape[0])
    counts = tf.math.bincount(category_ids, minlength=rows, maxlength=rows, axis=-1,
                              dtype=tf.float32)[:, 1:]  # [B, C], padding dropped
    total = tf.reduce_sum(counts, axis=1, keepdims=True)
    log_share = tf.math.log((counts + 1.0) * (rows - 1) / (total + rows - 1))
    return log_share @ self.codes[1:]

  def query(self, learned: tf.Tensor, features: tf.Tensor, history_state: tf.Tensor,
            context_category: tf.Tensor) -> tf.Tensor:
    """[g h, T (w_ctx code + interests), T w_pop]; `history_state` ends with history_share;
    `context_category` [B] is the context's primary category id, 0 when there is none (or
    training dropped it)."""
    context_code = tf.gather(self.codes, context_category)
    share = history_state[:, -self.dim:]
    agreement = tf.reduce_sum(share * context_code, axis=1, keepdims=True)
    g, w_ctx, w_pop, w_hist = tf.split(
        self.weights_of_request(tf.concat([features, agreement], axis=1)), NUM_WEIGHTS, axis=1)
    category_logits = w_ctx * context_code + w_hist * share + self.interests(history_state)
    return tf.concat([g * learned, self._temperature * category_logits, self._temperature * w_pop],
                     axis=1)

  def candidate(self, learned: tf.Tensor, category: tf.Tensor, item: tf.Tensor) -> tf.Tensor:
    """[i, code(primary category), log P(label)] for item ids [B] and primary categories [B]."""
    log_popularity = tf.math.log(tf.gather(self.label_probability, item))
    return tf.concat([learned, tf.gather(self.codes, category), log_popularity[:, tf.newaxis]],
                     axis=1)
