"""tf.Example feature values in and out: the one way ctxrec's components write and read them."""
from typing import Iterable

import tensorflow as tf


def bytes_feature(values: Iterable[str]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def floats_feature(values: Iterable[float]) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def ints_feature(values: Iterable[int]) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def values(example: tf.train.Example, name: str) -> list:
  """A feature's values, [] when the example lacks it."""
  feature = example.features.feature.get(name)  # `[name]` would insert a missing feature
  kind = feature.WhichOneof("kind") if feature is not None else None
  return list(getattr(feature, kind).value) if kind else []
