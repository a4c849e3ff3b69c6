"""PseudoContextAugmenter executor: label statistics, then pseudo-context on train, with Beam."""
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
from ctxrec.components.pseudo_context.config import PseudoContextConfig
from ctxrec.components.pseudo_context.pseudo_context import CategoryPool, Item
from ctxrec.transform import features as f

METRICS_NAMESPACE = "ctxrec.pseudo_context"
COUNTS = ("examples", "augmented", "substituted", "no_substitute")
SUMMARY_FILE = "augmentation.json"


def config_from_exec_properties(exec_properties: Dict[str, Any]) -> PseudoContextConfig:
  return PseudoContextConfig(
      rate=float(exec_properties[keys.RATE]),
      p_substitute=float(exec_properties[keys.P_SUBSTITUTE]),
      confidence_jitter=float(exec_properties[keys.CONFIDENCE_JITTER]),
      p_drop_secondary=float(exec_properties[keys.P_DROP_SECONDARY]),
      mode=str(exec_properties[keys.MODE]),
      seed=int(exec_properties[keys.SEED]))


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
  """Train labels grouped as primary category → CategoryPool (item → count, categories)."""
  return (train
          | "Labels" >> beam.FlatMap(_counted_label)
          | "CountLabels" >> beam.CombinePerKey(_merge_counts)
          | "ByPrimary" >> beam.Map(_by_primary)
          | "Group" >> beam.GroupByKey()
          | "Pool" >> beam.MapTuple(lambda category, counted: (category, CategoryPool(counted))))


def _augment(serialized: bytes, pools, config: PseudoContextConfig) -> bytes:
  augmented, outcome = pseudo_context.augment(serialized, pools, config)
  _inc("examples")
  for name, happened in outcome._asdict().items():
    if happened:
      _inc(name)
  return augmented


def _inc(name: str) -> None:
  beam.metrics.Metrics.counter(METRICS_NAMESPACE, name).inc()


class Executor(base_beam_executor.BaseBeamExecutor):
  """Writes pseudo-context into the train split; copies every other split unchanged."""

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
    counts = self._run_beam(source, examples, config)
    examples_io.mark_format(examples)
    for name, value in counts.items():
      examples.set_int_custom_property(name, value)
    _write_summary(examples.uri, config, counts)
    logging.info("PseudoContextAugmenter: %s with %s", counts, config)

  def _run_beam(self, source, examples, config: PseudoContextConfig) -> Dict[str, int]:
    pipeline = self._make_beam_pipeline()
    train = pipeline | "ReadTrain" >> beam.io.ReadFromTFRecord(
        examples_io.split_pattern(source, f.TRAIN), compression_type=examples_io.GZIP)
    pools = train | "CategoryPools" >> CategoryPools()  # pylint: disable=no-value-for-parameter
    _ = (train
         | "Augment" >> beam.Map(_augment, beam.pvalue.AsDict(pools), config)
         | "WriteTrain" >> examples_io.write_split(examples, f.TRAIN))
    result = pipeline.run()
    result.wait_until_finish()
    return {name: examples_io.counter(result, METRICS_NAMESPACE, name) for name in COUNTS}


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
    raise ValueError(f"{source.uri}: no '{f.TRAIN}' split (found {splits}); pseudo-context is "
                     f"for the train split, so the input examples need one")
  return splits


def _copy_split(source, examples, split: str) -> None:
  """Copies a split's files byte for byte: only train gets pseudo-context."""
  source_dir = artifact_utils.get_split_uri([source], split)
  target_dir = artifact_utils.get_split_uri([examples], split)
  tf.io.gfile.makedirs(target_dir)
  for path in tf.io.gfile.glob(os.path.join(source_dir, "*")):
    tf.io.gfile.copy(path, os.path.join(target_dir, os.path.basename(path)), overwrite=True)


def _write_summary(uri: str, config: PseudoContextConfig, counts: Dict[str, int]) -> None:
  """Writes the parameters and counts next to the splits, for people and later stages."""
  summary = {"parameters": dataclasses.asdict(config), "counts": counts}
  with tf.io.gfile.GFile(os.path.join(uri, SUMMARY_FILE), "w") as handle:
    json.dump(summary, handle, indent=2, sort_keys=True)
