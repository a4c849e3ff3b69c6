"""A user's history as of a day: the one definition SequenceExampleGen and the daily states share.

History on day D is the user's last `length` conversions before the start of D (UTC), oldest
first, each with its item's primary category and its age in whole days at D's start: exactly
what a job that runs once a day knows. Nothing from day D or later enters it.
"""
import bisect
import dataclasses
from typing import Iterable, List, Mapping, Sequence, Tuple

from ctxrec.components.sequence_example_gen.config import SECONDS_PER_DAY
from ctxrec.components.sequence_example_gen.input_tables import Item

Conversion = Tuple[int, str]  # (timestamp, item_id)


@dataclasses.dataclass(frozen=True)
class History:
  """The history features of one user on one day, oldest first."""
  item_ids: Tuple[str, ...]
  categories: Tuple[str, ...]  # each item's primary category
  age_days: Tuple[int, ...]

  def __len__(self) -> int:
    return len(self.item_ids)


def sort_conversions(conversions: Iterable[Conversion]) -> List[Conversion]:
  """Orders conversions by time (ties by item id), the order every history is taken in."""
  return sorted(conversions)


def last_conversions(conversions: Sequence[Conversion], day: int,
                     length: int) -> Sequence[Conversion]:
  """The last `length` of sorted `conversions` before the start of epoch day `day`."""
  end = bisect.bisect_left(conversions, (day * SECONDS_PER_DAY,))
  return conversions[max(0, end - length):end]


def history_at_day(conversions: Sequence[Conversion], day: int, length: int,
                   catalog: Mapping[str, Item]) -> History:
  """The history a user has on epoch day `day`, from their sorted conversions."""
  day_start = day * SECONDS_PER_DAY
  timestamps, item_ids = tuple(zip(*last_conversions(conversions, day, length))) or ((), ())
  return History(item_ids=item_ids,
                 categories=tuple([catalog[item].categories[0] for item in item_ids]),
                 age_days=tuple([(day_start - t) // SECONDS_PER_DAY for t in timestamps]))
