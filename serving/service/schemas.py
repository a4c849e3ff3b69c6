"""The HTTP API's request and response bodies: explicit schemas with bounds (OpenAPI at /docs)."""
from typing import Annotated, Dict, List, Optional

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from ctxrec.components.request_context import MAX_REQUEST_VIEWS

MAX_K = 1000
MAX_BATCH = 256
MAX_ID_LENGTH = 256
MAX_CATEGORIES = 64
MAX_EXCLUDED = 1000
MAX_DEMOGRAPHICS = 16
MAX_SECONDS_AGO = 2**31 - 1  # any age a client's clock gives (68 years) fits the model's int64
DEFAULT_K = 10

_Id = pydantic.constr(min_length=1, max_length=MAX_ID_LENGTH)
# Finite and in (0, 1], as the items table's confidences (NaN, Infinity and 1e999 are refused).
_Confidence = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]


class Body(BaseModel):
  """A request body: an unknown field is an error naming it, not silently ignored."""
  model_config = ConfigDict(extra="forbid")


class ViewIn(Body):
  """One view: an item of the catalog, or categories (with confidences), and how long ago."""
  item_id: Optional[_Id] = Field(None, description="an item of the catalog: the service reads "
                                                   "its categories there")
  categories: Optional[List[_Id]] = Field(
      None, min_length=1, max_length=MAX_CATEGORIES, description="primary first; for an item "
                                                                 "the catalog may not know")
  confidences: Optional[List[_Confidence]] = Field(
      None, max_length=MAX_CATEGORIES, description="one per category, each in (0, 1] as in the "
                                                   "items table; default 1.0 each")
  seconds_ago: Optional[int] = Field(
      None, ge=0, le=MAX_SECONDS_AGO, description="how long before the request it was viewed; "
                                                  "default: as the view before it, 0 for the "
                                                  "first")

  @pydantic.field_validator("confidences")
  @classmethod
  def _one_per_category(cls, confidences, info):
    categories = info.data.get("categories")  # validated before: declared before
    if confidences is not None and (categories is None or len(confidences) != len(categories)):
      raise ValueError(f"confidences has {len(confidences)} values for "
                       f"{len(categories or [])} categories; give one per category")
    return confidences

  @pydantic.model_validator(mode="after")
  def _something_viewed(self):
    if self.item_id is None and self.categories is None:
      raise ValueError("a view needs an item_id or categories")
    return self


_VIEW_FIELDS = tuple(ViewIn.model_fields)


class ContextIn(ViewIn):
  """What the user has been viewing: `views`, most recent first, or one view given inline
  (`item_id` / `categories`), which is a session of that one view."""
  views: Optional[List[ViewIn]] = Field(
      None, min_length=1, max_length=MAX_REQUEST_VIEWS,
      description=f"the session, most recent first (at most {MAX_REQUEST_VIEWS}); instead of "
                  f"the inline fields")

  @pydantic.field_validator("views")
  @classmethod
  def _a_session_or_one_view(cls, views, info):
    inline = [name for name in _VIEW_FIELDS if info.data.get(name) is not None]
    if views is not None and inline:
      raise ValueError(f"give context.views or the inline view (context.{inline[0]}), not both")
    return _most_recent_first(views)

  @pydantic.model_validator(mode="after")
  def _something_viewed(self):
    if self.views is None and self.item_id is None and self.categories is None:
      raise ValueError("give context.views, context.item_id or context.categories")
    return self

  def session(self) -> List[ViewIn]:
    """The views, most recent first: `views`, or the inline one."""
    return list(self.views) if self.views is not None else [self]


def _most_recent_first(views: Optional[List[ViewIn]]) -> Optional[List[ViewIn]]:
  """Refuses given ages that decrease: a session listed oldest first would pin the wrong item."""
  ages = [(slot, view.seconds_ago) for slot, view in enumerate(views or ())
          if view.seconds_ago is not None]
  for (before, older), (slot, age) in zip(ages, ages[1:]):
    if age < older:
      raise ValueError(f"views go most recent first, but view {slot} ({age} seconds ago) is "
                       f"more recent than view {before} ({older} seconds ago)")
  return views


class RetrieveRequest(Body):
  """One user's request: their id, what they have been viewing, how many items to return."""
  user_id: _Id
  context: Optional[ContextIn] = Field(
      None, description="what the user has been viewing: {\"views\": [{\"item_id\": ...}, ...]} "
                        "(most recent first), or {\"item_id\": ...} for one view")
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
  pinned: bool = Field(False, description="an item of the session, returned first with the "
                                          "list's top score (components/request_context.py)")


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
