"""The pipeline's RunValues as KFP runtime parameters, named after their fields."""
import dataclasses
import json
from typing import Any, Dict

from google.protobuf import json_format
from google.protobuf import message
from tfx import v1 as tfx

from ctxrec.pipeline.training_pipeline import RunValues


def _scalar(value: Any) -> Any:
  """A proto becomes its compact JSON text: KFP parameters are str, int or float."""
  if isinstance(value, message.Message):
    return json.dumps(json_format.MessageToDict(value, preserving_proto_field_name=True),
                      sort_keys=True)
  return value


def defaults(plain: RunValues) -> Dict[str, Any]:
  """Parameter name → default; an empty value (e.g. no data root) has none: set it at submit."""
  values = {f.name: _scalar(getattr(plain, f.name)) for f in dataclasses.fields(plain)}
  return {name: value for name, value in values.items() if value != ""}


def runtime_parameters(plain: RunValues) -> RunValues:
  """Every field a RuntimeParameter of the value's type, defaulting to the value."""
  given = defaults(plain)
  return RunValues(**{
      f.name: tfx.dsl.experimental.RuntimeParameter(
          name=f.name, ptype=type(_scalar(getattr(plain, f.name))), default=given.get(f.name))
      for f in dataclasses.fields(plain)})
