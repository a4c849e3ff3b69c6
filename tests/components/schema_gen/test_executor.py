"""The executor writes schema.pbtxt alone in its output: the packaged base (or the given one)
plus one feature per demographic column."""
import json
import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.types import standard_artifacts

from ctxrec.components.schema_gen import executor
from ctxrec.components.schema_gen import spec_keys as keys
from ctxrec.pipeline import schema
from ctxrec.transform import features as f


def _run(tmp_path, columns, base_schema=None) -> schema_pb2.Schema:
  artifact = standard_artifacts.Schema()
  artifact.uri = str(tmp_path)
  executor.Executor().Do({}, {keys.SCHEMA: [artifact]}, {
      keys.DEMOGRAPHIC_COLUMNS: json.dumps(columns), keys.BASE_SCHEMA: base_schema,
      keys.PACKAGED_SCHEMA_SHA256: "unused"})
  assert os.listdir(tmp_path) == [keys.SCHEMA_FILE]  # ExampleValidator reads the only file
  with open(tmp_path / keys.SCHEMA_FILE) as handle:
    return text_format.Parse(handle.read(), schema_pb2.Schema())


def test_packaged_schema_plus_demographics(tmp_path):
  written = _run(tmp_path, ["country", "tier"])
  assert written == schema.examples_schema(["country", "tier"])
  names = [feature.name for feature in written.feature]
  assert names[:len(schema.packaged_schema().feature)] == [
      feature.name for feature in schema.packaged_schema().feature]
  assert names[-2:] == [f.demographic_feature("country"), f.demographic_feature("tier")]


def test_given_base_schema_replaces_the_packaged_one(tmp_path):
  base = 'feature { name: "history_age_days" type: INT int_domain { max: 1 } }'
  written = _run(tmp_path, ["country"], base)
  assert [feature.name for feature in written.feature] == [
      f.HISTORY_AGE_DAYS, f.demographic_feature("country")]
  assert written.feature[0].int_domain.max == 1
