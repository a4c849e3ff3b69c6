"""Turns one user's events into one tf.Example per conversion, honouring the time contract.

History is `user_history.history_at_day` on the label's day (what the daily state job
computes for that day), empty for a first-ever conversion (what a new user gets online); the
real request context is the session: the last `session_views` views within the session window
that precede the conversion by at least `min_context_gap_seconds`, most recent first, written
for train and eval examples alike (the augmenter gives train examples without one a
pseudo-session).
"""
import bisect
from typing import Iterable, Iterator, List, Sequence, Tuple

import tensorflow as tf

from ctxrec.components import example_features as ef
from ctxrec.components import request_context
from ctxrec.components import session_features
from ctxrec.components import user_history
from ctxrec.components.events_io import Event
from ctxrec.components.sequence_example_gen.config import SECONDS_PER_DAY
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig
from ctxrec.components.sequence_example_gen.input_tables import Catalog
from ctxrec.transform import features as f

_EVENT_ORDER = {f.EVENT_VIEW: 0, f.EVENT_CONVERSION: 1}  # a view at the same second came first


def _session(views: Sequence[Event], view_times: List[int], timestamp: int, catalog: Catalog,
             config: SequenceExampleGenConfig) -> request_context.Context:
  """The last `session_views` catalogued views between `session_window_seconds` and
  `min_context_gap_seconds` before `timestamp`, most recent first."""
  last = bisect.bisect_right(view_times, timestamp - config.min_context_gap_seconds)
  first = bisect.bisect_left(view_times, timestamp - config.session_window_seconds)
  session = []
  for index in range(last - 1, first - 1, -1):
    view = request_context.view_of_item(views[index][2], catalog, timestamp - view_times[index])
    if view is not None:
      session.append(view)
      if len(session) == config.session_views:
        break
  return request_context.Context(tuple(session))


def build_user_examples(user_id: str, events: Iterable[Event], catalog: Catalog,
                        demographics: Sequence[str], config: SequenceExampleGenConfig,
                        eval_start_day: int) -> Iterator[Tuple[str, tf.train.Example]]:
  """Yields (split, example) for each of the user's conversions."""
  ordered = sorted(events, key=lambda e: (e[0], _EVENT_ORDER[e[1]], e[2]))
  conversions = user_history.sort_conversions(
      (e[0], e[2]) for e in ordered if e[1] == f.EVENT_CONVERSION)
  views = [e for e in ordered if e[1] == f.EVENT_VIEW]
  view_times = [e[0] for e in views]
  demo = {f.demographic_feature(c): ef.bytes_feature([v])
          for c, v in zip(config.demographic_columns, demographics)}
  for timestamp, label in conversions:
    day = timestamp // SECONDS_PER_DAY
    history = user_history.history_at_day(conversions, day, config.history_length, catalog)
    split = f.EVAL if day >= eval_start_day else f.TRAIN
    context = _session(views, view_times, timestamp, catalog, config)
    label_item = catalog[label]
    feature = {
        f.EXAMPLE_USER_ID: ef.bytes_feature([user_id]),
        f.HISTORY_ITEM_IDS: ef.bytes_feature(history.item_ids),
        f.HISTORY_CATEGORIES: ef.bytes_feature(history.categories),
        f.HISTORY_AGE_DAYS: ef.ints_feature(history.age_days),
        f.LABEL_ITEM_ID: ef.bytes_feature([label]),
        f.LABEL_CATEGORIES: ef.bytes_feature(label_item.categories),
        f.LABEL_CONFIDENCES: ef.floats_feature(label_item.confidences),
        f.LABEL_TIMESTAMP: ef.ints_feature([timestamp]),
        **session_features.session_features(context),
        **demo,
    }
    yield split, tf.train.Example(features=tf.train.Features(feature=feature))
