"""AnomaliesGate executor: reads ExampleValidator's anomalies and fails the run on any."""
import os
from typing import List

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

ANOMALIES_KEY = "anomalies"
_ANOMALIES_FILE = "SchemaDiff.pb"  # written by tfx.components.ExampleValidator per split


class DataAnomaliesError(RuntimeError):
  """The examples break the schema; the message names each feature and its anomaly."""


def read_anomalies(split_uri: str) -> anomalies_pb2.Anomalies:
  anomalies = anomalies_pb2.Anomalies()
  with tf.io.gfile.GFile(os.path.join(split_uri, _ANOMALIES_FILE), "rb") as handle:
    anomalies.ParseFromString(handle.read())
  return anomalies


def describe(split: str, anomalies: anomalies_pb2.Anomalies) -> List[str]:
  """One line per anomalous feature: split, feature, short and long description."""
  lines = []
  for feature, info in sorted(anomalies.anomaly_info.items()):
    detail = "; ".join(r.description for r in info.reason) or info.description
    lines.append(f"{split}: feature '{feature}': {info.short_description} ({detail})")
  if anomalies.HasField("dataset_anomaly_info"):
    info = anomalies.dataset_anomaly_info
    lines.append(f"{split}: dataset: {info.short_description} ({info.description})")
  return lines


class Executor(base_executor.BaseExecutor):
  """Raises DataAnomaliesError listing every anomaly, so bad data never reaches training."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    artifact = artifact_utils.get_single_instance(input_dict[ANOMALIES_KEY])
    lines = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
      lines += describe(split, read_anomalies(artifact_utils.get_split_uri([artifact], split)))
    if lines:
      raise DataAnomaliesError(
          "the examples do not match the schema (fix the input data, or the schema in "
          "pipeline/schema/schema.pbtxt if the change is intended):\n  " + "\n  ".join(lines))
