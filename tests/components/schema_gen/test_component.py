"""The component carries the columns, an optional base schema and the packaged schema's hash."""
import hashlib
import json

from tfx.types import standard_artifacts

from ctxrec.components.schema_gen import spec_keys as keys
from ctxrec.components.schema_gen.component import ExamplesSchemaGen
from ctxrec.pipeline import schema


def test_parameters_hold_no_path_and_follow_the_packaged_schema():
  component = ExamplesSchemaGen(("country", "tier"))
  with open(schema.BASE_SCHEMA_PATH, "rb") as handle:
    digest = hashlib.sha256(handle.read()).hexdigest()
  assert component.exec_properties == {
      keys.DEMOGRAPHIC_COLUMNS: json.dumps(["country", "tier"]), keys.BASE_SCHEMA: None,
      keys.PACKAGED_SCHEMA_SHA256: digest}
  assert component.outputs[keys.SCHEMA].type == standard_artifacts.Schema


def test_base_schema_text_is_a_parameter():
  component = ExamplesSchemaGen((), base_schema='feature { name: "x" type: INT }')
  assert component.exec_properties[keys.BASE_SCHEMA] == 'feature { name: "x" type: INT }'
