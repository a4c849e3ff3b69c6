"""Category keys: a 48-bit fingerprint of a category id, the one name of a category in the
retrieval score's exact category terms (boosts), computed alike in the model, the evaluator
and the service.

A vocabulary index would not do: categories outside the train vocabulary share a few OOV rows,
and a fixed-width code makes thousands of categories collide. A fingerprint has no width to
outgrow: a million categories collide with probability about 2e-3 (n^2 / 2^49) in all. 48 bits
stay exact in a float32 pair (the history state) and in JSON numbers (TF Serving's REST API).
"""
from typing import Sequence

import numpy as np
import tensorflow as tf

KEY_BITS = 48
HALF_BITS = 24  # a key travels in float32 as two exact halves
NO_KEY = 0  # "" (padding, no category)


def keys(categories: tf.Tensor) -> tf.Tensor:
  """int64 keys of category id strings (any shape); NO_KEY for ""."""
  hashed = tf.strings.to_hash_bucket_fast(categories, 2**KEY_BITS - 1) + 1
  return tf.where(categories == "", tf.constant(NO_KEY, tf.int64), hashed)


def keys_of(categories: Sequence[str]) -> np.ndarray:
  """The same keys, eagerly, for numpy callers (the evaluator, the service's catalog)."""
  values = np.asarray(list(categories), dtype=object)
  if values.size == 0:
    return np.zeros(0, np.int64)
  return keys(tf.constant(values.astype(str))).numpy()


def primary_keys(categories: tf.Tensor, confidences: tf.Tensor) -> tf.Tensor:
  """The key of each row's highest-confidence category ([B, K] -> [B]), NO_KEY when none."""
  present = categories != ""
  best = tf.argmax(tf.where(present, confidences, -1.0), axis=1, output_type=tf.int32)
  return keys(tf.gather(categories, best, batch_dims=1))


def to_floats(key: tf.Tensor) -> tf.Tensor:
  """[..., 2] exact float32 halves of int64 keys."""
  high = tf.bitwise.right_shift(key, HALF_BITS)
  low = tf.bitwise.bitwise_and(key, 2**HALF_BITS - 1)
  return tf.cast(tf.stack([high, low], axis=-1), tf.float32)


def from_floats(halves: tf.Tensor) -> tf.Tensor:
  """The int64 keys of to_floats' halves [..., 2]."""
  halves = tf.cast(tf.round(halves), tf.int64)
  return tf.bitwise.left_shift(halves[..., 0], HALF_BITS) + halves[..., 1]


def boost_scores(boost_keys: np.ndarray, boost_weights: np.ndarray,
                 item_keys: np.ndarray) -> np.ndarray:
  """[n, N]: for each request, the summed weights of its boosts whose key is the item's."""
  out = np.zeros((len(boost_keys), len(item_keys)), np.float32)
  order = np.argsort(item_keys, kind="stable")
  sorted_keys = item_keys[order]
  for row, (row_keys, row_weights) in enumerate(zip(boost_keys, boost_weights)):
    for key, weight in zip(row_keys, row_weights):
      if key == NO_KEY or weight == 0:
        continue
      start, stop = np.searchsorted(sorted_keys, [key, key + 1])
      out[row, order[start:stop]] += weight
  return out
