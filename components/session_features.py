"""The session context as tf.Example features: the one encoding SequenceExampleGen writes and
PseudoContextAugmenter reads and rewrites (layout: transform/features.py, CONTEXT_*)."""
from typing import Dict, Sequence

import tensorflow as tf

from ctxrec.components import example_features as ef
from ctxrec.components.request_context import Context, View
from ctxrec.transform import features as f

SESSION_FEATURES = (f.CONTEXT_ITEM_ID, f.CONTEXT_AGE_SECONDS, f.CONTEXT_CATEGORY_COUNTS,
                    f.CONTEXT_CATEGORIES, f.CONTEXT_CONFIDENCES)


def session_features(context: Context) -> Dict[str, tf.train.Feature]:
  """The five context features of a session (all empty for no context)."""
  views = context.views
  return {
      f.CONTEXT_ITEM_ID: ef.bytes_feature(v.item_id for v in views),
      f.CONTEXT_AGE_SECONDS: ef.ints_feature(v.seconds_ago for v in views),
      f.CONTEXT_CATEGORY_COUNTS: ef.ints_feature(len(v.categories) for v in views),
      f.CONTEXT_CATEGORIES: ef.bytes_feature(c for v in views for c in v.categories),
      f.CONTEXT_CONFIDENCES: ef.floats_feature(c for v in views for c in v.confidences)}


def session_of(ids: Sequence, ages: Sequence[int], counts: Sequence[int], names: Sequence,
               weights: Sequence[float]) -> Context:
  """The session of the five features' values (ids and names as bytes), in SESSION_FEATURES
  order; a ValueError when they disagree."""
  if not (len(ids) == len(ages) == len(counts) and sum(counts) == len(names) == len(weights)):
    raise ValueError(
        f"example context features disagree: {len(ids)} {f.CONTEXT_ITEM_ID}, {len(ages)} "
        f"{f.CONTEXT_AGE_SECONDS}, {len(counts)} {f.CONTEXT_CATEGORY_COUNTS} summing to "
        f"{sum(counts)}, {len(names)} {f.CONTEXT_CATEGORIES}, {len(weights)} "
        f"{f.CONTEXT_CONFIDENCES}; regenerate the examples with SequenceExampleGen")
  views, start = [], 0
  for item_id, age, count in zip(ids, ages, counts):
    views.append(View(item_id.decode(), tuple(n.decode() for n in names[start:start + count]),
                      tuple(float(w) for w in weights[start:start + count]), int(age)))
    start += count
  return Context(tuple(views))


def read_session(example: tf.train.Example) -> Context:
  """The example's session, or NO_CONTEXT; a ValueError when its features disagree."""
  return session_of(*(ef.values(example, name) for name in SESSION_FEATURES))


def write_session(example: tf.train.Example, context: Context) -> None:
  """Sets the five context features of `example` in place."""
  for name, feature in session_features(context).items():
    example.features.feature[name].CopyFrom(feature)
