"""The Examples artifact layout all ctxrec components share, and reading Beam counters.

Splits are GZIP TFRecords of tf.Example under `Split-<name>/data_tfrecord-*.gz`, with the
payload and file format properties TFX's own components expect.
"""
import os
from typing import List

import apache_beam as beam
import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

FILE_FORMAT = "tfrecords_gzip"
PAYLOAD_FORMAT = example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE
GZIP = beam.io.filesystem.CompressionTypes.GZIP
_FILE_PREFIX = "data_tfrecord"
_FILE_SUFFIX = ".gz"


def split_pattern(examples, split: str) -> str:
  return os.path.join(artifact_utils.get_split_uri([examples], split), f"*{_FILE_SUFFIX}")


def split_files(examples, split: str) -> List[str]:
  """The split's files (local or gs://), sorted; empty when the split has none."""
  return sorted(tf.io.gfile.glob(split_pattern(examples, split)))


def write_split(examples, split: str) -> beam.PTransform:
  """Writes serialized tf.Examples as one split of `examples`."""
  prefix = os.path.join(artifact_utils.get_split_uri([examples], split), _FILE_PREFIX)
  return beam.io.WriteToTFRecord(prefix, file_name_suffix=_FILE_SUFFIX, compression_type=GZIP)


def mark_format(examples) -> None:
  """Sets the payload and file format properties on an Examples artifact."""
  examples_utils.set_payload_format(examples, PAYLOAD_FORMAT)
  examples_utils.set_file_format(examples, FILE_FORMAT)


def counter(result, namespace: str, name: str) -> int:
  """A Beam counter's committed value after `pipeline.run()`."""
  query = result.metrics().query(
      beam.metrics.MetricsFilter().with_namespace(namespace).with_name(name))
  return int(sum(c.committed or 0 for c in query["counters"]))
