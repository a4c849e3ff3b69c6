"""The time split of a run, planned from the events scan before any example is written.

Every conversion on a catalogued item becomes one example (a first-ever conversion too, with an
empty history), so the split sizes are known from the scan: a split that cannot train a model
stops the run here, naming the sizes and the flags that change them.
"""
import dataclasses
import functools
import os
from typing import Tuple

from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig, day_to_date
from ctxrec.components.sequence_example_gen.input_tables import EventsScan, InputError, TableFiles

_FLAGS = "--eval-days N or --eval-start-date YYYY-MM-DD (or lower --min-train-examples)"


@dataclasses.dataclass(frozen=True)
class SplitPlan:
  """Where eval starts and how many examples each side of the cut-off gets."""
  eval_start_day: int
  train_examples: int
  eval_examples: int

  @property
  def eval_start_date(self) -> str:
    return day_to_date(self.eval_start_day)


def plan_split(config: SequenceExampleGenConfig, scan: EventsScan, events_path: str) -> SplitPlan:
  """The split the run will make, or an InputError when it cannot train a useful model."""
  days = scan.conversions_by_day
  name = os.path.basename(events_path)
  if not days:
    raise InputError(f"{name}: no conversion events on catalogued items to split")
  if len(days) == 1:
    (day, count), = days.items()
    raise InputError(f"{name}: all {count} conversions fall on one day ({day_to_date(day)}); the "
                     f"time split needs conversions on at least two days")
  start = config.eval_start_day(min(days), max(days))
  plan = SplitPlan(start, sum(n for d, n in days.items() if d < start),
                   sum(n for d, n in days.items() if d >= start))
  sizes = (f"train {plan.train_examples} conversions before {plan.eval_start_date}, eval "
           f"{plan.eval_examples} from it (data spans {day_to_date(min(days))} to "
           f"{day_to_date(max(days))})")
  if plan.eval_examples == 0:
    raise InputError(f"{name}: the eval split would be empty: {sizes}; move it with {_FLAGS}")
  if plan.train_examples < config.min_train_examples:
    raise InputError(f"{name}: too few train examples to learn from: {sizes}, under the floor of "
                     f"{config.min_train_examples}; give training more days with {_FLAGS}")
  if plan.train_examples < plan.eval_examples:
    raise InputError(f"{name}: the train split is smaller than the eval split: {sizes}; give "
                     f"training more days with {_FLAGS}")
  return plan


def check_tables(config: SequenceExampleGenConfig,
                 tables: TableFiles) -> Tuple[EventsScan, SplitPlan]:
  """Validates items, users and events and plans the split: the checks the pre-flight and
  SequenceExampleGen both run (a cluster run has no pre-flight). Runs once per process while
  the config and the tables are unchanged, so a local run scans its events once."""
  return _check_tables_cached(config.to_json(), tables, input_tables.fingerprint(tables))


@functools.lru_cache(maxsize=1)
def _check_tables_cached(config_json: str, tables: TableFiles,
                         fingerprint: str) -> Tuple[EventsScan, SplitPlan]:
  del fingerprint  # part of the cache key only
  config = SequenceExampleGenConfig.from_json(config_json)
  catalog = input_tables.load_items_once(tables.items)  # parsed once per process
  users = (input_tables.load_users(tables.users, config.demographic_columns)
           if tables.users else None)
  scan = input_tables.scan_events(tables.events, catalog, users,
                                  input_tables.TimestampRules(config.timestamp_unit))
  return scan, plan_split(config, scan, tables.events)
