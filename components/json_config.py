"""A frozen dataclass config travels as one JSON execution property, as TFX components take
their protos whole: a new field is written in one place."""
import dataclasses
import json
from typing import Type, TypeVar

T = TypeVar("T")


class JsonConfig:
  """Mixin for frozen dataclasses of JSON-friendly fields."""

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls: Type[T], text: str) -> T:
    known = {field.name for field in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in json.loads(text).items() if k in known})
