"""HistoryStateInferrer executor: every user's history on the serving day → encode_history.

Beam: catalogued conversions before the serving day's start, grouped by user per batch → by
user, trimmed to the last `history_length` as parts arrive → `user_history.history_at_day`
→ RunInference of `encode_history` (KeyedModelHandler over EncodeHistoryModelHandler) →
Parquet shards of (user_id, state). The cold-start state is computed by the same handler code.
"""
import dataclasses
import datetime
import logging
from typing import Iterable, List, Sequence, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from ctxrec import progress
from ctxrec.components import events_io
from ctxrec.components import examples_io
from ctxrec.components import history_states
from ctxrec.components import pushed_model
from ctxrec.components import user_history
from ctxrec.components.history_state_inferrer import spec_keys as keys
from ctxrec.components.history_state_inferrer.config import HistoryStateInferrerConfig
from ctxrec.components.history_state_inferrer.model_handler import EMPTY_HISTORY
from ctxrec.components.history_state_inferrer.model_handler import METRICS_NAMESPACE
from ctxrec.components.history_state_inferrer.model_handler import EncodeHistory
from ctxrec.components.history_state_inferrer.model_handler import EncodeHistoryModelHandler
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen.config import SECONDS_PER_DAY, day_to_date
from ctxrec.components.sequence_example_gen.input_tables import Catalog, InputError
from ctxrec.components.user_history import Conversion, History
from ctxrec.serving.feature_store import StatesVersion

USERS_COUNTER = "users"
PROGRESS_EVERY = 50_000  # users between progress lines (per worker)
STALE_AFTER_DAYS = 2  # a serving day this long after the last event gets a warning


def user_history_on_day(keyed: Tuple[str, Iterable[List[Conversion]]], catalog: Catalog,
                        day: int, length: int) -> Tuple[str, History]:
  """A user's history on `day` from the parts of their conversions before it, trimmed to the
  last `length` as parts arrive (a heavy user's log is never held whole); a conversion logged
  twice counts once, as in SequenceExampleGen."""
  user_id, parts = keyed
  kept: List[Conversion] = []
  for part in parts:
    kept.extend(part)
    if len(kept) > 2 * length:
      kept = list(user_history.last_conversions(user_history.sort_conversions(set(kept)), day,
                                                length))
  return user_id, user_history.history_at_day(user_history.sort_conversions(set(kept)), day,
                                              length, catalog)


class _UserHistory(beam.DoFn):
  """(user_id, parts of conversions) → (user_id, History), with the catalog loaded once."""

  def __init__(self, items_path: str, day: int, length: int):
    super().__init__()
    self._items_path, self._day, self._length = items_path, day, length
    self._catalog: Catalog = {}

  def setup(self) -> None:
    self._catalog = input_tables.load_items_once(self._items_path)

  def process(self, keyed):
    yield user_history_on_day(keyed, self._catalog, self._day, self._length)


def serving_day(serving_date: str, scan: input_tables.EventsScan, events_path: str) -> int:
  """The epoch day states are computed for; empty means the day after the last event."""
  last_day = scan.max_timestamp // SECONDS_PER_DAY
  if not serving_date:
    return last_day + 1
  try:
    day = (datetime.date.fromisoformat(serving_date) - datetime.date(1970, 1, 1)).days
  except ValueError:
    raise InputError(f"serving_date {serving_date!r} is not a YYYY-MM-DD date") from None
  first_day = scan.min_timestamp // SECONDS_PER_DAY
  if day <= first_day:
    raise InputError(
        f"serving_date {serving_date} is not after the first event's day "
        f"({day_to_date(first_day)}) in {events_path}: no user has a history before it; pass a "
        f"date from {day_to_date(first_day + 1)} on (the day after the last event is "
        f"{day_to_date(last_day + 1)})")
  if day > last_day + STALE_AFTER_DAYS:
    logging.warning("HistoryStateInferrer: serving_date %s is %d days after the last event "
                    "(%s): are the logs up to date?", serving_date, day - last_day - 1,
                    day_to_date(last_day))
  return day


class _ToTable(beam.DoFn):
  """Batches of (user, state) → Arrow tables of the states files; counts and reports users."""

  def __init__(self, version: StatesVersion):
    super().__init__()
    self._version = version
    self._users = 0

  def process(self, batch: Sequence[Tuple[str, PredictionResult]]):
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, USERS_COUNTER).inc(len(batch))
    if (self._users + len(batch)) // PROGRESS_EVERY > self._users // PROGRESS_EVERY:
      progress.report("HistoryStateInferrer: %d users encoded", self._users + len(batch))
    self._users += len(batch)
    states = np.stack([result.inference for _, result in batch])
    yield history_states.to_table([user_id for user_id, _ in batch], states, self._version)


class Executor(base_beam_executor.BaseBeamExecutor):
  """Computes the history state of every user with a conversion before the serving day."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    config = HistoryStateInferrerConfig.from_json(exec_properties[keys.CONFIG])
    pushed = artifact_utils.get_single_instance(input_dict[keys.PUSHED_MODEL])
    model_dir = pushed_model.model_dir(pushed)
    encoder = EncodeHistory(model_dir)  # fails early on a model without encode_history
    tables = input_tables.locate_tables(exec_properties[keys.INPUT_BASE])
    scan = input_tables.scan_events(tables.events, input_tables.load_items_once(tables.items),
                                    rules=input_tables.TimestampRules(config.timestamp_unit))
    day = serving_day(exec_properties.get(keys.SERVING_DATE) or "", scan, tables.events)
    version = StatesVersion(pushed_model.model_version(pushed), day_to_date(day))
    logging.info("HistoryStateInferrer: states %s (history_length %d, dimension %d) from %s",
                 version, encoder.history_length, encoder.dimension, tables.events)

    states = artifact_utils.get_single_instance(output_dict[keys.HISTORY_STATES])
    job = StatesJob(tables, model_dir, encoder.history_length, encoder.dimension, config, day,
                    version)
    users = job.run(self._make_beam_pipeline(), states)
    if users == 0:
      raise InputError(f"{tables.events}: no conversion on a catalogued item before "
                       f"{version.serving_date}; no user has a history to encode")
    history_states.write_cold_start(states, encoder([EMPTY_HISTORY])[0], version)
    history_states.set_properties(states, version, encoder.dimension, users)
    logging.info("HistoryStateInferrer: %d users with a history; the rest get the cold-start "
                 "state", users)


@dataclasses.dataclass(frozen=True)
class StatesJob:
  """The Beam job: every user's history on `day` → encode_history → the artifact's shards."""
  tables: input_tables.TableFiles
  model_dir: str
  history_length: int
  dimension: int
  config: HistoryStateInferrerConfig
  day: int
  version: StatesVersion

  def run(self, pipeline: beam.Pipeline, states) -> int:
    """Runs the job on `pipeline`, writing into the HistoryStates artifact; returns the users."""
    self.expand(pipeline, states)
    result = pipeline.run()
    result.wait_until_finish()
    return examples_io.counter(result, METRICS_NAMESPACE, USERS_COUNTER)

  def expand(self, pipeline: beam.Pipeline, states) -> None:
    handler = KeyedModelHandler(EncodeHistoryModelHandler(
        self.model_dir, self.config.min_batch_size, self.config.max_batch_size))
    items = self.tables.items
    _ = (pipeline
         | "ReadConversions" >> events_io.ReadUserConversions(  # pylint: disable=no-value-for-parameter
             self.tables.events, self.day * SECONDS_PER_DAY, items, self.config.timestamp_unit)
         | "ByUser" >> beam.GroupByKey()
         | "History" >> beam.ParDo(_UserHistory(items, self.day, self.history_length))
         | "EncodeHistory" >> RunInference(handler)
         | "Batch" >> beam.BatchElements(min_batch_size=self.config.min_batch_size,
                                         max_batch_size=self.config.max_batch_size)
         | "Table" >> beam.ParDo(_ToTable(self.version))
         | "Write" >> history_states.write_states(states, self.dimension))
