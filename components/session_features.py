"""The session context as tf.Example features: the one encoding SequenceExampleGen writes and
PseudoContextAugmenter reads and rewrites (layout: transform/features.py, CONTEXT_*)."""
from typing import Dict, Iterable

import tensorflow as tf

from ctxrec.components.request_context import Context, View
from ctxrec.transform import features as f

SESSION_FEATURES = (f.CONTEXT_ITEM_ID, f.CONTEXT_AGE_SECONDS, f.CONTEXT_CATEGORY_COUNTS,
                    f.CONTEXT_CATEGORIES, f.CONTEXT_CONFIDENCES)


def _bytes(values: Iterable[str]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def _ints(values: Iterable[int]) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _floats(values: Iterable[float]) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def session_features(context: Context) -> Dict[str, tf.train.Feature]:
  """The five context features of a session (all empty for no context)."""
  views = context.views
  return {
      f.CONTEXT_ITEM_ID: _bytes(v.item_id for v in views),
      f.CONTEXT_AGE_SECONDS: _ints(v.seconds_ago for v in views),
      f.CONTEXT_CATEGORY_COUNTS: _ints(len(v.categories) for v in views),
      f.CONTEXT_CATEGORIES: _bytes(c for v in views for c in v.categories),
      f.CONTEXT_CONFIDENCES: _floats(c for v in views for c in v.confidences)}


def _values(example: tf.train.Example, name: str) -> list:
  feature = example.features.feature.get(name)  # `[name]` would insert a missing feature
  kind = feature.WhichOneof("kind") if feature is not None else None
  return list(getattr(feature, kind).value) if kind else []


def read_session(example: tf.train.Example) -> Context:
  """The example's session, or NO_CONTEXT; a ValueError when its features disagree."""
  ids = [v.decode() for v in _values(example, f.CONTEXT_ITEM_ID)]
  ages = _values(example, f.CONTEXT_AGE_SECONDS)
  counts = _values(example, f.CONTEXT_CATEGORY_COUNTS)
  names = [v.decode() for v in _values(example, f.CONTEXT_CATEGORIES)]
  weights = _values(example, f.CONTEXT_CONFIDENCES)
  if not (len(ids) == len(ages) == len(counts) and sum(counts) == len(names) == len(weights)):
    raise ValueError(
        f"example context features disagree: {len(ids)} {f.CONTEXT_ITEM_ID}, {len(ages)} "
        f"{f.CONTEXT_AGE_SECONDS}, {len(counts)} {f.CONTEXT_CATEGORY_COUNTS} summing to "
        f"{sum(counts)}, {len(names)} {f.CONTEXT_CATEGORIES}, {len(weights)} "
        f"{f.CONTEXT_CONFIDENCES}; regenerate the examples with SequenceExampleGen")
  views, start = [], 0
  for item_id, age, count in zip(ids, ages, counts):
    views.append(View(item_id, tuple(names[start:start + count]),
                      tuple(float(w) for w in weights[start:start + count]), int(age)))
    start += count
  return Context(tuple(views))


def write_session(example: tf.train.Example, context: Context) -> None:
  """Sets the five context features of `example` in place."""
  for name, feature in session_features(context).items():
    example.features.feature[name].CopyFrom(feature)
