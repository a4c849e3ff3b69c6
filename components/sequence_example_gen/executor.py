"""SequenceExampleGen executor: validates the input tables, then builds examples with Beam."""
import logging
from typing import Any, Dict

import apache_beam as beam
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from ctxrec.components import events_io
from ctxrec.components import examples_io
from ctxrec.components.sequence_example_gen import example_builder
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen import spec_keys as keys
from ctxrec.components.sequence_example_gen import split_plan
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig, day_to_date
from ctxrec.transform import features as f

METRICS_NAMESPACE = "ctxrec.sequence_example_gen"


def config_from_exec_properties(exec_properties: Dict[str, Any]) -> SequenceExampleGenConfig:
  return SequenceExampleGenConfig.from_json(exec_properties[keys.CONFIG])


def _examples_of_user(grouped, catalog, users, config, eval_start_day):
  user_id, events = grouped
  events, _ = events_io.distinct_events(events)  # as the scan counted them (its drop counts)
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
    scan, plan = split_plan.check_tables(config, tables)
    for line in input_tables.drop_messages(scan):
      logging.warning(line)
    eval_start_day = plan.eval_start_day

    examples = artifact_utils.get_single_instance(output_dict[keys.EXAMPLES])
    examples.split_names = artifact_utils.encode_split_names(list(f.SPLITS))
    counts = self._run_beam(tables, config, eval_start_day, examples)
    examples_io.mark_format(examples)
    properties = {**{keys.example_count(s): n for s, n in counts.items()},
                  "events": scan.rows, **scan.drop_counts()}
    for name, value in properties.items():
      examples.set_int_custom_property(name, value)
    examples.set_string_custom_property(keys.EVAL_START_DATE, day_to_date(eval_start_day))
    examples.set_string_custom_property(keys.TIMESTAMP_UNIT, config.timestamp_unit)
    logging.info("SequenceExampleGen: %s; eval from %s", counts, day_to_date(eval_start_day))

  def _run_beam(self, tables, config, eval_start_day, examples) -> Dict[str, int]:
    pipeline = self._make_beam_pipeline()
    catalog = beam.pvalue.AsSingleton(
        pipeline | "ItemsPath" >> beam.Create([tables.items])
        | "LoadItems" >> beam.Map(input_tables.load_items_once))
    users = beam.pvalue.AsSingleton(
        pipeline | "UsersPath" >> beam.Create([tables.users])
        | "LoadUsers" >> beam.Map(input_tables.load_users, config.demographic_columns))
    splits = (pipeline
              | "ReadEvents" >> events_io.ReadEvents(  # pylint: disable=no-value-for-parameter
                  tables.events, config.timestamp_unit)
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

