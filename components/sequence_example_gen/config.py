"""Typed parameters of SequenceExampleGen, with the defaults of the input contract."""
import dataclasses
import datetime
from typing import Optional, Tuple

from ctxrec.transform import features as f

SECONDS_PER_DAY = 86400


@dataclasses.dataclass(frozen=True)
class SequenceExampleGenConfig:
  """How conversions become examples: history length, context window and the time split."""
  history_length: int = 50
  session_window_seconds: int = 3600
  eval_days: int = 7
  eval_start_date: Optional[str] = None  # "YYYY-MM-DD" (UTC); overrides eval_days
  demographic_columns: Tuple[str, ...] = f.DEFAULT_DEMOGRAPHIC_COLUMNS

  def __post_init__(self):
    if self.history_length < 1:
      raise ValueError(f"history_length must be >= 1, got {self.history_length}")
    if self.session_window_seconds < 0:
      raise ValueError(f"session_window_seconds must be >= 0, got {self.session_window_seconds}")
    if self.eval_days < 1:
      raise ValueError(f"eval_days must be >= 1, got {self.eval_days}")
    if self.eval_start_date:
      epoch_day(self.eval_start_date)

  def eval_start_day(self, max_timestamp: int) -> int:
    """The first epoch day of the eval split: the given date, or the last `eval_days` days."""
    if self.eval_start_date:
      return epoch_day(self.eval_start_date)
    return max_timestamp // SECONDS_PER_DAY - self.eval_days + 1


def epoch_day(date: str) -> int:
  """Days since 1970-01-01 of a UTC date written YYYY-MM-DD."""
  try:
    parsed = datetime.date.fromisoformat(date)
  except ValueError:
    raise ValueError(f"eval_start_date {date!r} is not a YYYY-MM-DD date") from None
  return (parsed - datetime.date(1970, 1, 1)).days


def day_to_date(day: int) -> str:
  return (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).isoformat()
