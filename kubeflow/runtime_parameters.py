"""A pipeline's run values (RunValues, DailyRunValues) as KFP runtime parameters, named after
their fields."""
import dataclasses
import json
from typing import Any, Dict, Union

from google.protobuf import json_format
from google.protobuf import message
from tfx import v1 as tfx

from ctxrec.pipeline.daily_pipeline import DailyRunValues
from ctxrec.pipeline.training_pipeline import RunValues

Values = Union[RunValues, DailyRunValues]


def _scalar(value: Any) -> Any:
  """A proto becomes its compact JSON text: KFP parameters are str, int or float."""
  if isinstance(value, message.Message):
    return json.dumps(json_format.MessageToDict(value, preserving_proto_field_name=True),
                      sort_keys=True)
  return value


def defaults(plain: Values) -> Dict[str, Any]:
  """Parameter name → default; an empty value (e.g. no data root) has none: set it at submit."""
  values = {f.name: _scalar(getattr(plain, f.name)) for f in dataclasses.fields(plain)}
  return {name: value for name, value in values.items() if value != ""}


def runtime_parameters(plain: Values) -> Values:
  """Every field a RuntimeParameter of the value's type, defaulting to the value."""
  given = defaults(plain)
  return type(plain)(**{
      f.name: tfx.dsl.experimental.RuntimeParameter(
          name=f.name, ptype=type(_scalar(getattr(plain, f.name))), default=given.get(f.name))
      for f in dataclasses.fields(plain)})
