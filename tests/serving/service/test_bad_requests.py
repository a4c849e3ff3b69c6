"""The generated bad-request suite (the HTTP analogue of tests/pipeline/test_bad_inputs.py): a
valid request, and variants of it with one field made malformed, out of range, non-finite or of
the wrong type, plus raw bodies no JSON encoder would write (NaN, Infinity, 1e999), wrong
methods, paths and content. Each case names its expected status and the field its error names.

Every answer is strict JSON (no NaN), no body carries a stack trace, and the service answers a
valid request after each case. README "Serve" lists the rules these cases check.
"""
import dataclasses
import json
from typing import Any, Dict, List, Optional, Union

import pytest
from fastapi.testclient import TestClient

from ctxrec.serving.service import fallbacks as fb
from ctxrec.serving.service import schemas as s
from ctxrec.serving.service import server

RETRIEVE, BATCH = "/v1/retrieve", "/v1/retrieve/batch"
JSON = {"content-type": "application/json"}
VALID: Dict[str, Any] = {
    "user_id": "u1", "context": {"categories": ["c1", "c2"], "confidences": [0.9, 0.4]},
    "demographics": {"country": "FR"}, "k": 5, "exclude_item_ids": ["x"]}


@dataclasses.dataclass(frozen=True)
class Case:
  name: str
  status: int
  field: Optional[str]  # the error names this field (a prefix: "k", "context.confidences")
  body: Union[Dict[str, Any], str, bytes, None] = None  # a dict is sent as JSON, else raw
  path: str = RETRIEVE
  method: str = "POST"
  headers: Dict[str, str] = dataclasses.field(default_factory=lambda: dict(JSON))


def _with(field: str, value: Any) -> Dict[str, Any]:
  """VALID with one dotted field set to `value` (or removed, for ...)."""
  body = json.loads(json.dumps(VALID))
  *parents, last = field.split(".")
  target = body
  for name in parents:
    target = target[name]
  if value is ...:
    del target[last]
  else:
    target[last] = value
  return body


def _raw(field: str, literal: str) -> str:
  """VALID as JSON text with one field's value written as `literal` (e.g. NaN, 1e999)."""
  marker = "__LITERAL__"
  return json.dumps(_with(field, marker)).replace(f'"{marker}"', literal)


def _field_cases() -> List[Case]:
  """One field of VALID at a time: missing, of the wrong type, empty, too long, out of range."""
  long_id = "x" * (s.MAX_ID_LENGTH + 1)
  variants = [
      ("user_id", ..., "missing"), ("user_id", 123, "a number"), ("user_id", "", "empty"),
      ("user_id", None, "null"), ("user_id", long_id, "too long"),
      ("k", 0, "zero"), ("k", -1, "negative"), ("k", s.MAX_K + 1, "above MAX_K"),
      ("k", "many", "a string"), ("k", 1.5, "fractional"),
      ("context", {}, "empty"), ("context", "i1", "a string"),
      ("context.categories", "c1", "a string"), ("context.categories", [], "empty"),
      ("context.categories", ["c"] * (s.MAX_CATEGORIES + 1), "too many"),
      ("context.categories", ["c1", ""], "an empty category"),
      ("context.confidences", [0.9], "fewer than categories"),
      ("context.confidences", [0.0, 0.4], "zero"), ("context.confidences", [-0.5, 0.4], "negative"),
      ("context.confidences", [1.5, 0.4], "above 1"), ("context.confidences", ["hi", 0.4], "text"),
      ("context.confidences", [None, 0.4], "null"),
      ("context.item_id", "", "an empty item id"), ("context.item_id", long_id, "a long item id"),
      ("context.page", "home", "an unknown field"),
      ("demographics", {"country": 3}, "a number value"),
      ("demographics", {"country": None}, "a null value"),
      ("demographics", "FR", "not an object"),
      ("demographics", {f"d{i}": "v" for i in range(s.MAX_DEMOGRAPHICS + 1)}, "too many"),
      ("demographics", {long_id: "v"}, "a long key"),
      ("demographics", {"country": long_id}, "a long value"),
      ("exclude_item_ids", ["x"] * (s.MAX_EXCLUDED + 1), "too many"),
      ("exclude_item_ids", [""], "an empty id"), ("exclude_item_ids", "x", "a string"),
      ("model_version", 7, "a number"), ("surprise", 1, "an unknown field"),
  ]
  return [Case(f"{field}: {what}", 422, field, _with(field, value))
          for field, value, what in variants]


def _session_cases() -> List[Case]:
  """`context.views` (a session, most recent first): too many, of the wrong type, out of order
  or given beside the inline view."""
  view = {"item_id": "i1", "seconds_ago": 30}
  session = lambda views, **inline: {**VALID, "context": {"views": views, **inline}}  # noqa: E731
  variants = [
      ("context.views", [view] * (s.MAX_REQUEST_VIEWS + 1), {}, "too many"),
      ("context.views", [], {}, "empty"), ("context.views", "i1", {}, "a string"),
      ("context.views", [view], {"item_id": "i2"}, "beside context.item_id"),
      ("context.views", [view, {**view, "seconds_ago": 5}], {}, "oldest first"),
      ("context.views.0", ["i1"], {}, "a view that is a string"),
      ("context.views.1", [view, {}], {}, "an empty view"),
      ("context.views.0.seconds_ago", [{**view, "seconds_ago": "soon"}], {}, "a string age"),
      ("context.views.0.seconds_ago", [{**view, "seconds_ago": -1}], {}, "a negative age"),
      ("context.views.0.seconds_ago", [{**view, "seconds_ago": 2.5}], {}, "a fractional age"),
      ("context.views.0.seconds_ago", [{**view, "seconds_ago": 10 ** 30}], {}, "a huge age"),
      ("context.views.0.item_id", [{"item_id": ""}], {}, "an empty item id"),
      ("context.views.0.confidences", [{"categories": ["c1"], "confidences": [2.0]}], {},
       "a confidence above 1"),
      ("context.views.0.page", [{**view, "page": "home"}], {}, "an unknown field"),
  ]
  cases = [Case(f"{field}: {what}", 422, field, session(views, **inline))
           for field, views, inline, what in variants]
  cases.append(Case("context.views.0.seconds_ago: NaN", 422, "context.views.0.seconds_ago",
                    json.dumps(session([{**view, "seconds_ago": "__NaN__"}])).replace(
                        '"__NaN__"', "NaN")))
  return cases


def _non_finite_cases() -> List[Case]:
  """Numbers JSON allows in Python's parser but not in a score: each a 422 naming the field."""
  cases = []
  for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
    cases.append(Case(f"context.confidences: {literal}", 422, "context.confidences",
                      _raw("context.confidences", f"[{literal}, 0.4]")))
    cases.append(Case(f"k: {literal}", 422, "k", _raw("k", literal)))
  cases.append(Case("demographics: NaN", 422, "demographics",
                    _raw("demographics", '{"country": NaN}')))
  return cases


def _body_cases() -> List[Case]:
  return [
      Case("truncated JSON", 400, "body", '{"user_id": "u1", '),
      Case("not UTF-8", 400, "body", b'{"user_id": "\xff\xfe"}'),
      Case("empty body", 422, None, ""),
      Case("a list, not an object", 422, None, "[1, 2]"),
      Case("over 1 MiB", 413, None, '{"user_id": "' + "u" * (2 << 20) + '"}'),
      Case("a model version not served", 409, "model_version", _with("model_version", "1")),
      Case("batch: empty", 422, "requests", {"requests": []}, BATCH),
      Case("batch: too many", 422, "requests", {"requests": [VALID] * (s.MAX_BATCH + 1)}, BATCH),
      Case("batch: not a list", 422, "requests", {"requests": VALID}, BATCH),
      Case("batch: one bad request", 422, "requests.1.k",
           {"requests": [VALID, _with("k", 0), VALID]}, BATCH),
      Case("batch: NaN in one request", 422, "requests.0.context.confidences",
           '{"requests": [' + _raw("context.confidences", "[NaN, 0.4]") + "]}", BATCH),
      Case("GET on retrieve", 405, None, None, RETRIEVE, "GET"),
      Case("an unknown path", 404, None, VALID, "/v1/nothing"),
  ]


CASES = _field_cases() + _session_cases() + _non_finite_cases() + _body_cases()


@pytest.fixture(scope="module")
def client(tiny_release):
  serving_dir, store_uri, _ = tiny_release
  return TestClient(server.build(server.ServeConfig(serving_dir, store_uri)).app)


def _strict_json(text: str):
  """Parses like a strict client: NaN and Infinity are not JSON."""
  def refuse(constant):
    raise ValueError(f"{constant} is not JSON")
  return json.loads(text, parse_constant=refuse)


def _send(client, case: Case):
  if isinstance(case.body, dict):
    return client.request(case.method, case.path, json=case.body, headers=case.headers)
  return client.request(case.method, case.path, content=case.body, headers=case.headers)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_bad_request_gets_its_status_naming_the_field(client, case):
  response = _send(client, case)
  assert response.status_code == case.status, response.text[:500]
  body = _strict_json(response.text)
  assert "Traceback" not in response.text
  fields = [e["field"] or "" for e in body["errors"]]
  assert all(e["message"] for e in body["errors"])
  if case.field is not None:
    assert any(name.startswith(case.field) for name in fields), fields
  assert client.post(RETRIEVE, json=VALID).status_code == 200  # still serving


def test_the_valid_request_and_its_odd_but_valid_neighbours_are_answered(client):
  for body in (VALID, _with("user_id", "ü-ser ☃"), _with("context.confidences", [1.0, 1e-9]),
               _with("context", {"item_id": "never-seen", "categories": ["c1"]}),
               _with("context", {"views": [{"item_id": "never-seen", "categories": ["c1"]},
                                           {"categories": ["c2"], "seconds_ago": 30}]}),
               _with("context", {"views": [{"item_id": "x", "seconds_ago": s.MAX_SECONDS_AGO}]
                                 * s.MAX_REQUEST_VIEWS})):
    response = client.post(RETRIEVE, json=body)
    assert response.status_code == 200, response.text
    answer = _strict_json(response.text)
    assert len(answer["items"]) == body["k"]


def test_exclusions_never_shorten_an_answer_the_catalog_can_fill(client):
  items = client.get("/readyz").json()["items"]
  top = client.post(RETRIEVE, json={"user_id": "u1", "k": 10}).json()["items"]
  excluded = [i["item_id"] for i in top]
  full = client.post(RETRIEVE, json={"user_id": "u1", "k": items - 10,
                                     "exclude_item_ids": excluded}).json()
  assert len(full["items"]) == items - 10 and fb.SHORT_ANSWER not in full["fallbacks"]
  assert not set(excluded) & {i["item_id"] for i in full["items"]}
  short = client.post(RETRIEVE, json={"user_id": "u1", "k": items,
                                      "exclude_item_ids": excluded}).json()
  assert len(short["items"]) == items - 10 and fb.SHORT_ANSWER in short["fallbacks"]
  assert f'ctxrec_fallbacks_total{{fallback="{fb.SHORT_ANSWER}"}}' in client.get("/metrics").text
