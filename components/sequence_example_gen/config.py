"""Typed parameters of SequenceExampleGen, with the defaults of the input contract."""
import dataclasses
import datetime
from typing import Optional, Tuple

from ctxrec.components.json_config import JsonConfig
from ctxrec.transform import features as f

SECONDS_PER_DAY = 86400
EVAL_SHARE = 0.2  # the default eval window: this share of the days the data spans...
MAX_EVAL_DAYS = 7  # ...capped at a week
TIMESTAMP_UNITS = {"s": 1, "ms": 1000}  # unit -> units per second


@dataclasses.dataclass(frozen=True)
class SequenceExampleGenConfig(JsonConfig):
  """How conversions become examples: history length, context window and the time split."""
  history_length: int = 50
  session_window_seconds: int = 3600
  # A view less than this many seconds before a conversion is not its context: logs often
  # record the view that carries the purchase in the same second.
  min_context_gap_seconds: int = 1
  session_views: int = f.DEFAULT_SESSION_VIEWS  # the last views of the session kept per example
  eval_days: Optional[int] = None  # None: EVAL_SHARE of the data's days, at most MAX_EVAL_DAYS
  eval_start_date: Optional[str] = None  # "YYYY-MM-DD" (UTC); overrides eval_days
  min_train_examples: int = 100  # fewer train examples stop the run before training
  demographic_columns: Tuple[str, ...] = f.DEFAULT_DEMOGRAPHIC_COLUMNS
  timestamp_unit: str = "s"

  def __post_init__(self):
    object.__setattr__(self, "demographic_columns", tuple(self.demographic_columns))
    if self.history_length < 1:
      raise ValueError(f"history_length must be >= 1, got {self.history_length}")
    if self.session_views < 1:
      raise ValueError(f"session_views must be >= 1, got {self.session_views}")
    if self.session_window_seconds < 0:
      raise ValueError(f"session_window_seconds must be >= 0, got {self.session_window_seconds}")
    if not 0 <= self.min_context_gap_seconds <= self.session_window_seconds:
      raise ValueError(f"min_context_gap_seconds must be within [0, session_window_seconds], "
                       f"got {self.min_context_gap_seconds}")
    if self.eval_days is not None and self.eval_days < 1:
      raise ValueError(f"eval_days must be >= 1, got {self.eval_days}")
    if self.min_train_examples < 1:
      raise ValueError(f"min_train_examples must be >= 1, got {self.min_train_examples}")
    check_timestamp_unit(self.timestamp_unit)
    if self.eval_start_date:
      epoch_day(self.eval_start_date)

  def eval_window_days(self, first_day: int, last_day: int) -> int:
    """The eval window's length: the given days, or a share of the span, capped at a week."""
    if self.eval_days is not None:
      return self.eval_days
    span = last_day - first_day + 1
    return max(1, min(MAX_EVAL_DAYS, round(EVAL_SHARE * span)))

  def eval_start_day(self, first_day: int, last_day: int) -> int:
    """The first epoch day of the eval split: the given date, or the last eval window."""
    if self.eval_start_date:
      return epoch_day(self.eval_start_date)
    return last_day - self.eval_window_days(first_day, last_day) + 1


def check_timestamp_unit(unit: str) -> None:
  """Every reader of the events takes one of these units; anything else is a config error."""
  if unit not in TIMESTAMP_UNITS:
    raise ValueError(f"timestamp_unit must be one of {', '.join(TIMESTAMP_UNITS)}, got {unit!r}")


def epoch_day(date: str) -> int:
  """Days since 1970-01-01 of a UTC date written YYYY-MM-DD."""
  try:
    parsed = datetime.date.fromisoformat(date)
  except ValueError:
    raise ValueError(f"eval_start_date {date!r} is not a YYYY-MM-DD date") from None
  return (parsed - datetime.date(1970, 1, 1)).days


def day_to_date(day: int) -> str:
  return (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).isoformat()
