"""The examples' schema: the repo's pipeline/schema/schema.pbtxt plus the demographic columns."""
import os
from typing import Optional, Sequence

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from ctxrec.transform import features as f

BASE_SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "schema", "schema.pbtxt")


def packaged_schema() -> schema_pb2.Schema:
  """The base schema as installed with the package (package data, also inside the image)."""
  with open(BASE_SCHEMA_PATH) as handle:
    return text_format.Parse(handle.read(), schema_pb2.Schema())


def examples_schema(demographic_columns: Sequence[str],
                    base: Optional[schema_pb2.Schema] = None) -> schema_pb2.Schema:
  """The base schema with one required single-valued string feature per demographic column."""
  schema = schema_pb2.Schema()
  schema.CopyFrom(packaged_schema() if base is None else base)
  for column in demographic_columns:
    feature = schema.feature.add(name=f.demographic_feature(column), type=schema_pb2.BYTES)
    feature.presence.min_fraction = 1.0
    feature.presence.min_count = 1
    feature.value_count.min = feature.value_count.max = 1
  return schema
