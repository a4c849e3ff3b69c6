"""ExamplesSchemaGen: the examples' schema, built where the pipeline runs (no local file path)."""
import hashlib
import json
from typing import Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from ctxrec.components.schema_gen import executor
from ctxrec.components.schema_gen import spec_keys as keys
from ctxrec.pipeline import schema


class ExamplesSchemaGenSpec(types.ComponentSpec):
  PARAMETERS = {
      keys.DEMOGRAPHIC_COLUMNS: ExecutionParameter(type=str),
      keys.BASE_SCHEMA: ExecutionParameter(type=str, optional=True),
      keys.PACKAGED_SCHEMA_SHA256: ExecutionParameter(type=str),
  }
  INPUTS = {}
  OUTPUTS = {keys.SCHEMA: ChannelParameter(type=standard_artifacts.Schema)}


def packaged_schema_sha256() -> str:
  """Changes with pipeline/schema/schema.pbtxt, so a cached schema is not reused after an edit."""
  with open(schema.BASE_SCHEMA_PATH, "rb") as handle:
    return hashlib.sha256(handle.read()).hexdigest()


class ExamplesSchemaGen(base_component.BaseComponent):
  """Writes `schema` (schema.pbtxt) from the schema packaged with ctxrec plus demographics.

  The executor reads the base schema from the installed package at run time, so a compiled
  pipeline carries no path of the machine that built it. `base_schema` (schema text) replaces
  the packaged base, e.g. to tighten a range.
  """

  SPEC_CLASS = ExamplesSchemaGenSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, demographic_columns: Sequence[str], base_schema: Optional[str] = None):
    super().__init__(spec=ExamplesSchemaGenSpec(
        demographic_columns=json.dumps(list(demographic_columns)),
        base_schema=base_schema,
        packaged_schema_sha256=packaged_schema_sha256(),
        schema=types.Channel(type=standard_artifacts.Schema)))
