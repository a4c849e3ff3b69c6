"""PseudoContextAugmenter executor: label and logged-session statistics, then pseudo-sessions on
train, with Beam."""
import dataclasses
import json
import logging
import os
from typing import Any, Dict, Iterable, List, Tuple

import apache_beam as beam
import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from ctxrec.components import examples_io
from ctxrec.components.pseudo_context import pseudo_context
from ctxrec.components.pseudo_context import spec_keys as keys
from ctxrec.components.pseudo_context.config import FITTED, MIN_REAL_CONTEXTS_TO_FIT
from ctxrec.components.pseudo_context.config import PseudoContextConfig
from ctxrec.components.pseudo_context.pseudo_context import CategoryPool, ContextStats, Item
from ctxrec.components.pseudo_context.pseudo_context import LabelPools
from ctxrec.transform import features as f

METRICS_NAMESPACE = "ctxrec.pseudo_context"
COUNTS = ("examples",) + pseudo_context.Outcome._fields
SUMMARY_FILE = "augmentation.json"
# Why a fitted parameter falls back although train has enough logged sessions.
_SHORT_OF = {"p_substitute": "no logged session shows its label's category",
             "label_positions": "no logged session shows its label's category",
             "p_on_category": "no logged session has a second view"}


def config_from_exec_properties(exec_properties: Dict[str, Any]) -> PseudoContextConfig:
  return PseudoContextConfig.from_json(exec_properties[keys.CONFIG])


def _counted_label(serialized: bytes) -> Iterable[Tuple[bytes, Tuple[int, Item]]]:
  label = pseudo_context.read_label(tf.train.Example.FromString(serialized))
  if label is not None:
    yield label.item_id, (1, label)


def _merge_counts(counted: Iterable[Tuple[int, Item]]) -> Tuple[int, Item]:
  """Sums one item's label count; keeps one deterministic copy of its categories."""
  counted = list(counted)
  return sum(count for count, _ in counted), min(item for _, item in counted)


def _by_primary(entry: Tuple[bytes, Tuple[int, Item]]) -> Tuple[bytes, Tuple[Item, int]]:
  _, (count, item) = entry
  return item.categories[0], (item, count)


@beam.ptransform_fn
def CategoryPools(train: beam.PCollection) -> beam.PCollection:  # pylint: disable=invalid-name
  """Train labels as one LabelPools: per primary category, each item's label count."""
  return (train
          | "Labels" >> beam.FlatMap(_counted_label)
          | "CountLabels" >> beam.CombinePerKey(_merge_counts)
          | "ByPrimary" >> beam.Map(_by_primary)
          | "Group" >> beam.GroupByKey()
          | "Pool" >> beam.MapTuple(lambda category, counted: (category, CategoryPool(counted)))
          | "AllPools" >> beam.combiners.ToList()
          | "LabelPools" >> beam.Map(LabelPools))


def _sum_stats(stats: Iterable[ContextStats]) -> ContextStats:
  return sum(stats, ContextStats())


def _augment(serialized: bytes, pools, config: PseudoContextConfig) -> bytes:
  augmented, outcome = pseudo_context.augment(serialized, pools, config)
  _inc("examples")
  for name, value in outcome._asdict().items():
    if value:
      _inc(name, int(value))
  return augmented


def _stat_widths(session_views: int) -> Dict[str, int]:
  """How many bins each histogram of ContextStats has."""
  return {"lengths": session_views, "positions": session_views,
          "gaps": pseudo_context.GAP_BINS}


def _record_stats(stats: ContextStats) -> None:
  """Beam counters carry the statistics back to the executor, as they do the counts: one
  counter per number, stats_<field> or stats_<field>_<bin>."""
  for name, value in stats._asdict().items():
    if isinstance(value, tuple):
      for index, number in enumerate(value):
        _inc(f"stats_{name}_{index}", number)
    else:
      _inc(f"stats_{name}", value)


def _counted_stats(result, session_views: int) -> ContextStats:
  """The ContextStats the counters of `_record_stats` carried back."""
  def count(name: str) -> int:
    return examples_io.counter(result, METRICS_NAMESPACE, f"stats_{name}")
  widths = _stat_widths(session_views)
  return ContextStats(**{
      name: (tuple(count(f"{name}_{i}") for i in range(widths[name])) if name in widths
             else count(name))
      for name in ContextStats._fields})


def _inc(name: str, value: int = 1) -> None:
  beam.metrics.Metrics.counter(METRICS_NAMESPACE, name).inc(value)


class Executor(base_beam_executor.BaseBeamExecutor):
  """Writes pseudo-sessions into the train split; copies every other split unchanged."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    config = config_from_exec_properties(exec_properties)
    source = artifact_utils.get_single_instance(input_dict[keys.EXAMPLES])
    splits = _checked_splits(source)
    examples = artifact_utils.get_single_instance(output_dict[keys.AUGMENTED_EXAMPLES])
    examples.split_names = artifact_utils.encode_split_names(splits)
    for split in splits:
      if split != f.TRAIN:
        _copy_split(source, examples, split)
    counts, stats = self._run_beam(source, examples, config)
    fitted = pseudo_context.fit(config, stats)
    examples_io.mark_format(examples)
    for name, value in counts.items():
      examples.set_int_custom_property(name, value)
    _write_summary(examples.uri, config, fitted, stats, counts)
    logging.info("PseudoContextAugmenter: %s with %s (logged contexts: %s)", counts, fitted,
                 stats)

  def _run_beam(self, source, examples,
                config: PseudoContextConfig) -> Tuple[Dict[str, int], ContextStats]:
    pipeline = self._make_beam_pipeline()
    train = pipeline | "ReadTrain" >> beam.io.ReadFromTFRecord(
        examples_io.split_pattern(source, f.TRAIN), compression_type=examples_io.GZIP)
    pools = train | "CategoryPools" >> CategoryPools()  # pylint: disable=no-value-for-parameter
    stats = (train
             | "ContextStats" >> beam.Map(pseudo_context.context_stats, config.session_views)
             | "SumStats" >> beam.CombineGlobally(_sum_stats))
    fitted = stats | "Fit" >> beam.Map(lambda total: pseudo_context.fit(config, total))
    _ = (train
         | "Augment" >> beam.Map(_augment, beam.pvalue.AsSingleton(pools),
                                 beam.pvalue.AsSingleton(fitted))
         | "WriteTrain" >> examples_io.write_split(examples, f.TRAIN))
    _ = stats | "KeepStats" >> beam.Map(_record_stats)
    result = pipeline.run()
    result.wait_until_finish()
    counts = {name: examples_io.counter(result, METRICS_NAMESPACE, name) for name in COUNTS}
    return counts, _counted_stats(result, config.session_views)


def _checked_splits(source) -> List[str]:
  """The input's splits, once it is known to be gzipped tf.Examples with a train split."""
  payload = examples_utils.get_payload_format(source)
  file_format = examples_utils.get_file_format(source)
  if payload != examples_io.PAYLOAD_FORMAT or file_format != examples_io.FILE_FORMAT:
    raise ValueError(
        f"{source.uri}: PseudoContextAugmenter reads gzipped tf.Example TFRecords, got "
        f"{example_gen_pb2.PayloadFormat.Name(payload)} as {file_format}; feed it the examples "
        f"of SequenceExampleGen")
  splits = artifact_utils.decode_split_names(source.split_names)
  if f.TRAIN not in splits:
    raise ValueError(f"{source.uri}: no '{f.TRAIN}' split (found {splits}); pseudo-sessions are "
                     f"for the train split, so the input examples need one")
  return splits


def _copy_split(source, examples, split: str) -> None:
  """Copies a split's files byte for byte: only train gets pseudo-sessions."""
  source_dir = artifact_utils.get_split_uri([source], split)
  target_dir = artifact_utils.get_split_uri([examples], split)
  tf.io.gfile.makedirs(target_dir)
  for path in tf.io.gfile.glob(os.path.join(source_dir, "*")):
    tf.io.gfile.copy(path, os.path.join(target_dir, os.path.basename(path)), overwrite=True)


def _fitted_from(config: PseudoContextConfig, stats: ContextStats) -> str:
  """Where each fitted parameter of the summary comes from (`config` as given, before fitting)."""
  measured = pseudo_context.estimates(stats)
  sources = []
  for name in FITTED:
    if getattr(config, name) is not None:
      sources.append(f"{name} set in the config")
    elif measured[name] is not None:
      sources.append(f"{name} fitted")
    elif stats.real < MIN_REAL_CONTEXTS_TO_FIT:
      sources.append(f"{name} a fallback")
    else:
      sources.append(f"{name} a fallback ({_SHORT_OF.get(name, 'nothing to fit it from')})")
  return (f"{', '.join(sources)}; {stats.real} train examples have a logged session (fitting "
          f"needs {MIN_REAL_CONTEXTS_TO_FIT})")


def _write_summary(uri: str, given: PseudoContextConfig, fitted: PseudoContextConfig,
                   stats: ContextStats, counts: Dict[str, int]) -> None:
  """Writes the parameters used, what they were fitted from, and the counts next to the splits."""
  summary = {"parameters": dataclasses.asdict(fitted), "fitted_from": _fitted_from(given, stats),
             "logged_contexts": stats._asdict(), "counts": counts}
  with tf.io.gfile.GFile(os.path.join(uri, SUMMARY_FILE), "w") as handle:
    json.dump(summary, handle, indent=2, sort_keys=True)
