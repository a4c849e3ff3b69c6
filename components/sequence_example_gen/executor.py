"""SequenceExampleGen executor: validates the input tables, then builds examples with Beam."""
import json
import logging
import os
from typing import Any, Dict

import apache_beam as beam
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from ctxrec.components import events_io
from ctxrec.components import examples_io
from ctxrec.components.sequence_example_gen import example_builder
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen import spec_keys as keys
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig, day_to_date
from ctxrec.components.sequence_example_gen.input_tables import InputError
from ctxrec.transform import features as f

METRICS_NAMESPACE = "ctxrec.sequence_example_gen"


def config_from_exec_properties(exec_properties: Dict[str, Any]) -> SequenceExampleGenConfig:
  return SequenceExampleGenConfig(
      history_length=int(exec_properties[keys.HISTORY_LENGTH]),
      session_window_seconds=int(exec_properties[keys.SESSION_WINDOW_SECONDS]),
      eval_days=int(exec_properties[keys.EVAL_DAYS]),
      eval_start_date=exec_properties.get(keys.EVAL_START_DATE) or None,
      demographic_columns=tuple(json.loads(exec_properties[keys.DEMOGRAPHIC_COLUMNS])))


def _examples_of_user(grouped, catalog, users, config, eval_start_day):
  user_id, events = grouped
  demographics = users.get(user_id, (f.UNKNOWN,) * len(config.demographic_columns))
  for split, example in example_builder.build_user_examples(
      user_id, events, catalog, demographics, config, eval_start_day):
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, keys.example_count(split)).inc()
    yield beam.pvalue.TaggedOutput(split, example.SerializeToString())


class Executor(base_beam_executor.BaseBeamExecutor):
  """Validates events/items/users, then writes one tf.Example per conversion with history."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    config = config_from_exec_properties(exec_properties)
    tables = input_tables.locate_tables(exec_properties[keys.INPUT_BASE])
    logging.info("SequenceExampleGen: validating %s", tables)
    catalog = input_tables.load_items(tables.items)
    users = input_tables.load_users(tables.users, config.demographic_columns)
    scan = input_tables.scan_events(tables.events, catalog)
    _log_drops(scan)
    eval_start_day = config.eval_start_day(scan.max_timestamp)
    del catalog, users  # Beam workers load their own copies.

    examples = artifact_utils.get_single_instance(output_dict[keys.EXAMPLES])
    examples.split_names = artifact_utils.encode_split_names(list(f.SPLITS))
    counts = self._run_beam(tables, config, eval_start_day, examples)
    _check_splits(counts, eval_start_day, tables.events)
    examples_io.mark_format(examples)
    properties = {**{keys.example_count(s): n for s, n in counts.items()},
                  "events": scan.rows, "dropped_unknown_items": scan.dropped_unknown_items,
                  "dropped_event_types": sum(scan.dropped_event_types.values())}
    for name, value in properties.items():
      examples.set_int_custom_property(name, value)
    examples.set_string_custom_property(keys.EVAL_START_DATE, day_to_date(eval_start_day))
    logging.info("SequenceExampleGen: %s; eval from %s", counts, day_to_date(eval_start_day))

  def _run_beam(self, tables, config, eval_start_day, examples) -> Dict[str, int]:
    pipeline = self._make_beam_pipeline()
    catalog = beam.pvalue.AsSingleton(
        pipeline | "ItemsPath" >> beam.Create([tables.items])
        | "LoadItems" >> beam.Map(input_tables.load_items))
    users = beam.pvalue.AsSingleton(
        pipeline | "UsersPath" >> beam.Create([tables.users])
        | "LoadUsers" >> beam.Map(input_tables.load_users, config.demographic_columns))
    splits = (pipeline
              | "ReadEvents" >> events_io.ReadEvents(tables.events)  # pylint: disable=no-value-for-parameter
              | "KeepKnown" >> beam.Filter(events_io.is_kept, catalog)
              | "ByUser" >> beam.GroupByKey()
              | "Examples" >> beam.FlatMap(_examples_of_user, catalog, users, config,
                                           eval_start_day).with_outputs(*f.SPLITS))
    for split in f.SPLITS:
      _ = splits[split] | f"Write[{split}]" >> examples_io.write_split(examples, split)
    result = pipeline.run()
    result.wait_until_finish()
    return {split: examples_io.counter(result, METRICS_NAMESPACE, keys.example_count(split))
            for split in f.SPLITS}


def _log_drops(scan: input_tables.EventsScan) -> None:
  for event_type, count in sorted(scan.dropped_event_types.items()):
    logging.warning("events: dropped %d rows with event_type %r (not view/conversion)", count,
                    event_type)
  if scan.dropped_unknown_items:
    logging.warning("events: dropped %d rows naming items absent from the items table",
                    scan.dropped_unknown_items)


def _check_splits(counts: Dict[str, int], eval_start_day: int, events_path: str) -> None:
  empty = [s for s, n in counts.items() if n == 0]
  if empty:
    raise InputError(
        f"{os.path.basename(events_path)}: the {' and '.join(empty)} split(s) got no examples "
        f"(eval starts {day_to_date(eval_start_day)}; an example needs a conversion on an earlier "
        f"day); set eval_start_date or eval_days so both sides of the cut-off hold conversions")
