"""The one history definition: last conversions before the day's start, and SequenceExampleGen
giving every label exactly the history the daily states job computes for the label's day."""
import random

import pandas as pd

from ctxrec.components import user_history
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig
from ctxrec.components.sequence_example_gen.example_builder import build_user_examples
from ctxrec.components.sequence_example_gen.input_tables import Item
from ctxrec.transform import features as f

DAY, HOUR = 86400, 3600
T0 = 1767225600  # 2026-01-01 00:00 UTC
D0 = T0 // DAY
CATALOG = {i: Item((f"cat_{i}", "other"), (0.9, 0.1)) for i in "abcdefghij"}


def test_history_on_a_day_is_the_last_conversions_before_its_start():
  conversions = user_history.sort_conversions(
      [(T0 + 2 * DAY + 23 * HOUR, "c"), (T0 + 5 * HOUR, "a"), (T0 + DAY + 1, "b"), (T0 + 3 * DAY, "d")])
  history = user_history.history_at_day(conversions, D0 + 3, 2, CATALOG)
  assert history.item_ids == ("b", "c")  # d is on day 3 itself: not yet known
  assert history.categories == ("cat_b", "cat_c")
  assert history.age_days == (1, 0)  # whole days at the start of day 3
  assert len(user_history.history_at_day(conversions, D0, 50, CATALOG)) == 0


def test_ties_at_one_second_are_ordered_by_item_id():
  conversions = user_history.sort_conversions([(T0, "b"), (T0, "a")])
  assert user_history.history_at_day(conversions, D0 + 1, 1, CATALOG).item_ids == ("b",)


def _examples(events, length):
  config = SequenceExampleGenConfig(history_length=length)
  for _, example in build_user_examples("u1", events, CATALOG, ("x", "y"), config, 10**6):
    feature = example.features.feature
    yield (feature[f.LABEL_TIMESTAMP].int64_list.value[0],
           user_history.History(
               tuple(v.decode() for v in feature[f.HISTORY_ITEM_IDS].bytes_list.value),
               tuple(v.decode() for v in feature[f.HISTORY_CATEGORIES].bytes_list.value),
               tuple(feature[f.HISTORY_AGE_DAYS].int64_list.value)))


def test_sequence_example_gen_gives_each_label_the_history_of_its_day():
  rng = random.Random(3)
  events = [(T0 + rng.randrange(20 * DAY), rng.choice(("view", "conversion")),
             rng.choice("abcdefghij")) for _ in range(300)]
  conversions = user_history.sort_conversions((t, i) for t, kind, i in events
                                              if kind == "conversion")
  examples = list(_examples(events, length=7))
  assert len(examples) > 100
  for label_timestamp, history in examples:
    expected = _pandas_history(events, label_timestamp // DAY, 7)
    assert history == expected == user_history.history_at_day(
        conversions, label_timestamp // DAY, 7, CATALOG)


def _pandas_history(events, day, length) -> user_history.History:
  """An independent spelling of the contract: conversions before the day, last `length`."""
  frame = pd.DataFrame(events, columns=["t", "kind", "item"])
  frame = frame[(frame.kind == "conversion") & (frame.t < day * DAY)]
  frame = frame.sort_values(["t", "item"]).tail(length)
  return user_history.History(tuple(frame.item), tuple(f"cat_{i}" for i in frame.item),
                              tuple(int(a) for a in (day * DAY - frame.t) // DAY))
