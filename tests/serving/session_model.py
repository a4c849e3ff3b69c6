"""A tiny SavedModel with the session `context_head` of issue 22 (context ids and ages [n, S],
categories and confidences [n, S, K]), so the head's protocols are tested on rank-3 inputs
without training a model. Every input moves the embedding: an input a head drops or reorders
changes the answer."""
import os

import tensorflow as tf

from ctxrec.transform import features as f

VIEWS, CATEGORIES, DIMENSION = 8, 4, 6
COUNTRY = f.demographic_feature(f.COUNTRY)
_SHAPES = {
    f.HISTORY_STATE: ([None, DIMENSION], tf.float32),
    f.CONTEXT_ITEM_ID: ([None, VIEWS], tf.string),
    f.CONTEXT_AGE_SECONDS: ([None, VIEWS], tf.int64),
    f.CONTEXT_CATEGORIES: ([None, VIEWS, CATEGORIES], tf.string),
    f.CONTEXT_CONFIDENCES: ([None, VIEWS, CATEGORIES], tf.float32),
    COUNTRY: ([None], tf.string),
}
SPECS = {name: tf.TensorSpec(shape, dtype, name=name) for name, (shape, dtype) in _SHAPES.items()}


def _hashed(strings: tf.Tensor) -> tf.Tensor:
  """A float per string, 0 for "": position-weighted so the order of views matters."""
  buckets = tf.cast(tf.strings.to_hash_bucket_fast(strings, 1000) + 1, tf.float32)
  return tf.where(strings == "", 0.0, buckets / 1000.0)


@tf.function(input_signature=[SPECS])
def _context_head(inputs):
  slots = tf.range(1, VIEWS + 1, dtype=tf.float32)
  ids = tf.reduce_sum(_hashed(inputs[f.CONTEXT_ITEM_ID]) * slots, axis=1)
  ages = tf.reduce_sum(tf.cast(inputs[f.CONTEXT_AGE_SECONDS], tf.float32) * slots, axis=1)
  weighted = _hashed(inputs[f.CONTEXT_CATEGORIES]) * inputs[f.CONTEXT_CONFIDENCES]
  categories = tf.reduce_sum(tf.reduce_sum(weighted, axis=2) * slots, axis=1)
  country = _hashed(inputs[COUNTRY])
  extra = tf.stack([ids, ages / 1000.0, categories, country], axis=1)
  rows = tf.shape(extra)[0]
  embedding = tf.concat([inputs[f.HISTORY_STATE], extra], axis=1)
  return {f.USER_EMBEDDING: embedding,
          f.BOOST_KEYS: tf.tile(tf.constant([[3, 5]], tf.int64), [rows, 1]),
          f.BOOST_WEIGHTS: tf.stack([ids, categories], axis=1)}


def save(base_path: str, version: str = "1") -> str:
  """Writes the model as BASE/<version>/ (TF Serving's layout); returns the version folder."""
  path = os.path.join(base_path, version)
  tf.saved_model.save(tf.Module(), path, signatures={
      f.SIGNATURE_CONTEXT_HEAD: _context_head.get_concrete_function()})
  return path


_SINGLE_VIEW = {
    f.HISTORY_STATE: ([None, DIMENSION], tf.float32),
    f.CONTEXT_ITEM_ID: ([None, 1], tf.string),
    f.CONTEXT_CATEGORIES: ([None, CATEGORIES], tf.string),
    f.CONTEXT_CONFIDENCES: ([None, CATEGORIES], tf.float32),
}


@tf.function(input_signature=[{name: tf.TensorSpec(shape, dtype, name=name)
                               for name, (shape, dtype) in _SINGLE_VIEW.items()}])
def _single_view_head(inputs):
  weighted = _hashed(inputs[f.CONTEXT_CATEGORIES]) * inputs[f.CONTEXT_CONFIDENCES]
  extra = tf.stack([tf.reduce_sum(_hashed(inputs[f.CONTEXT_ITEM_ID]), axis=1),
                    tf.reduce_sum(weighted, axis=1)], axis=1)
  return {f.USER_EMBEDDING: tf.concat([inputs[f.HISTORY_STATE], extra], axis=1)}


def save_single_view(base_path: str, version: str = "1") -> str:
  """A model of before sessions (context ids [n, 1], categories [n, K]), as BASE/<version>/."""
  path = os.path.join(base_path, version)
  tf.saved_model.save(tf.Module(), path, signatures={
      f.SIGNATURE_CONTEXT_HEAD: _single_view_head.get_concrete_function()})
  return path
