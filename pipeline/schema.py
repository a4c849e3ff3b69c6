"""The examples' schema: the repo's pipeline/schema/schema.pbtxt plus the demographic columns."""
import os
from typing import Sequence

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from ctxrec.transform import features as f

BASE_SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "schema", "schema.pbtxt")


def examples_schema(demographic_columns: Sequence[str]) -> schema_pb2.Schema:
  """The base schema with one required single-valued string feature per demographic column."""
  schema = schema_pb2.Schema()
  with open(BASE_SCHEMA_PATH) as handle:
    text_format.Parse(handle.read(), schema)
  for column in demographic_columns:
    feature = schema.feature.add(name=f.demographic_feature(column), type=schema_pb2.BYTES)
    feature.presence.min_fraction = 1.0
    feature.presence.min_count = 1
    feature.value_count.min = feature.value_count.max = 1
  return schema


def write_schema(demographic_columns: Sequence[str], directory: str) -> str:
  """Writes the schema as schema.pbtxt under `directory` for ImportSchemaGen; returns its path."""
  tf.io.gfile.makedirs(directory)
  path = os.path.join(directory, "schema.pbtxt")
  with tf.io.gfile.GFile(path, "w") as handle:
    handle.write(text_format.MessageToString(examples_schema(demographic_columns)))
  return path
