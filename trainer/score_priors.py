"""Explicit terms of the retrieval score: exact category boosts and item popularity.

A dot-product retriever ranks by q·v alone. The score here is

  score(u, i) / T = g * <h, i> / T  +  w_pop * log P(i is a train label)  +  boost_u(key(i))

  boost_u(c) = softplus(b_ctx + log sum_j conf_jc e^(-d j))   for each category c of the
                                                   session's views j = 0 (now), 1, ... (if any)
             + softplus(b_hist + log share_c)   for each of the history's top categories
                                                   (b_hist_ctx in place of b_hist with a session)

`key(i)` is the item's primary category key (transform/category_keys.py); <h, i> the learned
towers' cosine; g, w_pop, b_ctx, b_hist, b_hist_ctx and the per-view decay d positive weights
the context head computes per request, seeing whether the history agrees with the context. The
first two terms are a dot product ([g h, T w_pop] · [i, log P]); the boosts are exact, by
category key, with no code width for categories to collide in: they travel beside the user
embedding (BOOST_KEYS, BOOST_WEIGHTS, in score units) and the evaluator and the service add them
to the items of those categories.

Before any training the score is the heuristics a team writes first. With a session: its
categories by popularity, each view's half the weight of the one after it (d = ln 2, as the
evaluator's session_views baseline), the history's categories only tilting popularity inside
that order (b_hist_ctx 1: a factor 1 + e share); without one: the history's categories, then
popularity (b_hist 5 >> the spread of log P); g small. A history boost as strong with a session
as without reorders the session's categories by the history (tiny seed 7, untrained: 0.711 vs
session_views 0.743; at 1, 0.741). Training moves the weights and grows the learned term.
"""
import math
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from ctxrec.transform import category_keys

NUM_WEIGHTS = 6  # g, w_pop, b_ctx, b_hist (no session), b_hist_ctx (with one), d
INITIAL_WEIGHTS = (0.1, 1.0, 10.0, 5.0, 1.0, math.log(2.0))
WEIGHT_RATE = 10.0
MAX_EXPONENT = 8.0  # a weight stays within e^8 of its initial value
HISTORY_CATEGORIES = 8  # the history's most frequent categories boosted
TAIL_WIDTH = 3 * HISTORY_CATEGORIES  # per category: the key's two float halves, its share


def top_categories(history_keys: tf.Tensor, count: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """The `count` most frequent keys of each history [B, L] (ties: the most recent; NO_KEY
  pads) and their shares of the history: ([B, count] int64, [B, count] float32)."""
  history_keys = tf.pad(history_keys, [[0, 0], [0, count]])  # at least `count` positions
  present = history_keys != category_keys.NO_KEY
  same = tf.equal(history_keys[:, :, tf.newaxis], history_keys[:, tf.newaxis, :])
  same = tf.logical_and(same, present[:, tf.newaxis, :])
  counts = tf.reduce_sum(tf.cast(same, tf.float32), axis=2)  # [B, L] occurrences of each key
  length = tf.shape(history_keys)[1]
  later = tf.linalg.band_part(tf.ones([length, length]), 0, -1) - tf.eye(length)  # j > i
  repeated = tf.reduce_any(tf.logical_and(same, tf.cast(later, tf.bool)[tf.newaxis]), axis=2)
  last = tf.logical_and(present, tf.logical_not(repeated))  # one position per key, its latest
  recency = tf.cast(tf.range(length), tf.float32) / tf.cast(length + 1, tf.float32)
  ranked = tf.where(last, counts + recency, -1.0)
  top = tf.math.top_k(ranked, k=count)
  found = top.values > 0
  keys = tf.where(found, tf.gather(history_keys, top.indices, batch_dims=1), category_keys.NO_KEY)
  total = tf.maximum(tf.reduce_sum(tf.cast(present, tf.float32), axis=1, keepdims=True), 1.0)
  return keys, tf.where(found, tf.floor(top.values) / total, 0.0)


def pack_tail(keys: tf.Tensor, shares: tf.Tensor) -> tf.Tensor:
  """[B, TAIL_WIDTH] floats that carry the top categories in the history state."""
  return tf.concat([tf.reshape(category_keys.to_floats(keys), [-1, 2 * HISTORY_CATEGORIES]),
                    shares], axis=1)


def unpack_tail(state: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """(keys, shares) from the end of a history state."""
  tail = state[:, -TAIL_WIDTH:]
  halves = tf.reshape(tail[:, :2 * HISTORY_CATEGORIES], [-1, HISTORY_CATEGORIES, 2])
  return category_keys.from_floats(halves), tail[:, 2 * HISTORY_CATEGORIES:]


def batch_boosts(boost_keys: tf.Tensor, boost_weights: tf.Tensor,
                 item_keys: tf.Tensor) -> tf.Tensor:
  """[B, N]: per query, the summed boost weights whose key is each candidate's key."""
  match = tf.equal(boost_keys[:, :, tf.newaxis], item_keys[tf.newaxis, tf.newaxis, :])
  match = tf.logical_and(match, (boost_keys != category_keys.NO_KEY)[:, :, tf.newaxis])
  return tf.reduce_sum(tf.cast(match, tf.float32) * boost_weights[:, :, tf.newaxis], axis=1)


def first_occurrences(same: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
  """[B, N]: the present positions no earlier position equals (`same` [B, N, N]: i equals j)."""
  size = tf.shape(same)[1]
  earlier = tf.cast(tf.linalg.band_part(tf.ones([size, size]), -1, 0) - tf.eye(size), tf.bool)
  repeated = tf.reduce_any(tf.logical_and(same, earlier[tf.newaxis]), axis=2)  # j < i
  return tf.logical_and(present, tf.logical_not(repeated))


def session_mass(keys: tf.Tensor, confidences: tf.Tensor,
                 decay: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Each distinct key of a session's views [B, S, K] once, with its recency-weighted
  confidence sum_j conf_j e^(-decay j) (decay [B, 1]): ([B, S K] keys, NO_KEY where a key
  repeats an earlier one, and [B, S K] masses)."""
  views, width = tf.shape(keys)[1], tf.shape(keys)[2]
  recency = tf.exp(-decay[:, :, tf.newaxis] * tf.cast(tf.range(views), tf.float32)[
      tf.newaxis, :, tf.newaxis])
  flat_keys = tf.reshape(keys, [-1, views * width])
  flat_mass = tf.reshape(confidences * recency, [-1, views * width])
  present = flat_keys != category_keys.NO_KEY
  same = tf.logical_and(tf.equal(flat_keys[:, :, tf.newaxis], flat_keys[:, tf.newaxis, :]),
                        present[:, tf.newaxis, :])
  total = tf.reduce_sum(tf.cast(same, tf.float32) * flat_mass[:, tf.newaxis, :], axis=2)
  first = first_occurrences(same, present)
  return tf.where(first, flat_keys, category_keys.NO_KEY), tf.where(first, total, 0.0)


class PriorWeights(tf.keras.layers.Layer):
  """Per-request weights (g, w_pop, b_ctx, b_hist, b_hist_ctx, d), positive, starting at `initial`.

  Each weight is initial * exp(rate * z): Adam moves a parameter by about the learning rate a
  step, so `rate` lets a few hundred steps scale a weight several-fold (a shop's strong context
  prior must be able to yield where the data says the context is weak)."""

  def __init__(self, hidden_units: int = 32, initial: Sequence[float] = INITIAL_WEIGHTS,
               rate: float = WEIGHT_RATE, **kwargs):
    super().__init__(**kwargs)
    self._initial = tf.constant(np.asarray(initial, np.float32))
    self._rate = rate
    self.hidden = tf.keras.layers.Dense(hidden_units, activation="relu")
    self.out = tf.keras.layers.Dense(NUM_WEIGHTS, kernel_initializer="zeros")

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    exponent = tf.clip_by_value(self._rate * self.out(self.hidden(inputs)), -MAX_EXPONENT,
                                MAX_EXPONENT)
    return self._initial * tf.exp(exponent)


class ScorePriors(tf.keras.layers.Layer):
  """The explicit terms: the query's and candidate's extra dimension, and the boosts."""

  def __init__(self, label_probability: tf.Tensor, temperature: float, **kwargs):
    super().__init__(**kwargs)
    self.label_probability = label_probability  # the model's table (log-Q uses it too)
    self.weights_of_request = PriorWeights()
    self._temperature = temperature

  @staticmethod
  def history_tail(history_categories: tf.Tensor) -> tf.Tensor:
    """The state's tail for raw history categories [B, L]: the top categories and shares."""
    return pack_tail(*top_categories(category_keys.keys(history_categories),
                                     HISTORY_CATEGORIES))

  def query(self, learned: tf.Tensor, features: tf.Tensor, history_state: tf.Tensor,
            context_categories: tf.Tensor, context_confidences: tf.Tensor,
            has_context: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(query [g h, T w_pop], boost keys [B, S K + H], boost weights in score units) for the
    session's categories and confidences [B, S, K]; the session's boosts are off where
    `has_context` [B] is False (none, or dropped in training)."""
    history_keys, shares = unpack_tail(history_state)
    context_keys = tf.where(has_context[:, tf.newaxis, tf.newaxis],
                            category_keys.keys(context_categories), category_keys.NO_KEY)
    primary = tf.where(has_context, category_keys.primary_keys(context_categories[:, 0],
                                                               context_confidences[:, 0]),
                       category_keys.NO_KEY)
    agreement = tf.reduce_sum(shares * tf.cast(tf.equal(history_keys, primary[:, tf.newaxis]),
                                               tf.float32), axis=1, keepdims=True)
    g, w_pop, b_ctx, b_hist, b_hist_ctx, decay = tf.split(
        self.weights_of_request(tf.concat([features, agreement], axis=1)), NUM_WEIGHTS, axis=1)
    context_keys, mass = session_mass(context_keys, context_confidences, decay)
    # softplus: a boost never turns into a penalty (a weak category still ranks above the rest)
    context_weights = tf.nn.softplus(b_ctx + tf.math.log(tf.maximum(mass, 1e-6)))
    history_bias = tf.where(has_context[:, tf.newaxis], b_hist_ctx, b_hist)
    history_weights = tf.nn.softplus(history_bias + tf.math.log(tf.maximum(shares, 1e-6)))
    keys = tf.concat([context_keys, history_keys], axis=1)
    weights = tf.concat([context_weights, history_weights], axis=1)
    weights = tf.where(keys != category_keys.NO_KEY, weights, 0.0) * self._temperature
    return tf.concat([g * learned, self._temperature * w_pop], axis=1), keys, weights

  def candidate(self, learned: tf.Tensor, item: tf.Tensor) -> tf.Tensor:
    """[i, log P(label)] for item ids [B]."""
    log_popularity = tf.math.log(tf.gather(self.label_probability, item))
    return tf.concat([learned, log_popularity[:, tf.newaxis]], axis=1)
