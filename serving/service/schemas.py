"""The HTTP API's request and response bodies: explicit schemas with bounds (OpenAPI at /docs)."""
from typing import Annotated, Dict, List, Optional

import pydantic
from pydantic import BaseModel, ConfigDict, Field

MAX_K = 1000
MAX_BATCH = 256
MAX_ID_LENGTH = 256
MAX_CATEGORIES = 64
MAX_EXCLUDED = 1000
MAX_DEMOGRAPHICS = 16
DEFAULT_K = 10

_Id = pydantic.constr(min_length=1, max_length=MAX_ID_LENGTH)
# Finite and in (0, 1], as the items table's confidences (NaN, Infinity and 1e999 are refused).
_Confidence = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]


class Body(BaseModel):
  """A request body: an unknown field is an error naming it, not silently ignored."""
  model_config = ConfigDict(extra="forbid")


class ContextIn(Body):
  """What the user is viewing: an item of the catalog, or categories (with confidences)."""
  item_id: Optional[_Id] = None
  categories: Optional[List[_Id]] = Field(None, min_length=1, max_length=MAX_CATEGORIES)
  confidences: Optional[List[_Confidence]] = Field(
      None, max_length=MAX_CATEGORIES, description="one per category, each in (0, 1] as in the "
                                                   "items table; default 1.0 each")

  @pydantic.field_validator("confidences")
  @classmethod
  def _one_per_category(cls, confidences, info):
    categories = info.data.get("categories")  # validated before: declared before
    if confidences is not None and (categories is None or len(confidences) != len(categories)):
      raise ValueError(f"context.confidences has {len(confidences)} values for "
                       f"{len(categories or [])} categories; give one per category")
    return confidences

  @pydantic.model_validator(mode="after")
  def _something_viewed(self):
    if self.item_id is None and self.categories is None:
      raise ValueError("give context.item_id or context.categories")
    return self


class RetrieveRequest(Body):
  """One user's request: their id, what they view now, how many items to return."""
  user_id: _Id
  context: Optional[ContextIn] = None
  demographics: Optional[Dict[_Id, pydantic.constr(max_length=MAX_ID_LENGTH)]] = Field(
      None, max_length=MAX_DEMOGRAPHICS, description="user columns, e.g. {\"country\": \"FR\"}")
  k: int = Field(DEFAULT_K, ge=1, le=MAX_K)
  exclude_item_ids: List[_Id] = Field(default_factory=list, max_length=MAX_EXCLUDED)
  model_version: Optional[_Id] = Field(None, description="refuse the answer unless this model "
                                                         "version is served")


class BatchRequest(Body):
  requests: List[RetrieveRequest] = Field(min_length=1, max_length=MAX_BATCH)


class ScoredItem(BaseModel):
  item_id: str
  score: float
  # The item being viewed, returned first (components/request_context.py); it carries the
  # list's top score.
  pinned: bool = False


class Timings(BaseModel):
  state: float
  head: float
  ann: float
  total: float


class RetrieveResponse(BaseModel):
  items: List[ScoredItem]
  model_version: str
  index_version: str
  states_version: str
  fallbacks: List[str]
  timings_ms: Timings


class BatchResponse(BaseModel):
  responses: List[RetrieveResponse]


class FieldError(BaseModel):
  field: Optional[str]
  message: str


class ErrorResponse(BaseModel):
  errors: List[FieldError]
