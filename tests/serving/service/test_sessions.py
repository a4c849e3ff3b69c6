"""Sessions through the HTTP service (issue 22), on a release of fakes around a tiny session
model (session_model.py): `context.views` parse and resolve as eval sessions do, the session's
items are pinned first by the evaluator's rule (request_context.pinned_items), and bad sessions
get a 422 naming the field. No trained model is needed."""
import json
import types

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ctxrec.components.sequence_example_gen.input_tables import Item
from ctxrec.serving.feature_store import StatesVersion
from ctxrec.serving.head.in_process import InProcessHead
from ctxrec.serving.service import app as app_module
from ctxrec.serving.service import fallbacks as fb
from ctxrec.serving.service import schemas as s
from ctxrec.serving.service.metrics import ServiceMetrics
from ctxrec.serving.service.release import Release
from ctxrec.serving.service.retrieval import RetrievalService, resolve_context
from ctxrec.serving.service.serve_config import ServeConfig
from ctxrec.transform import features as f

import session_model  # noqa: E402  (tests/serving, put on sys.path by its conftest)

CATALOG = {f"i{n}": Item((f"c{n % 3}", "c9"), (0.75, 0.25)) for n in range(1, 13)}
RANKING = ["r0", "i1", "r1", "i3", "r2"] + [f"r{n}" for n in range(3, 40)]  # the model's order


class FakeRetriever:
  """Answers every query with RANKING (scores 10, 9, ...) and records how many it was asked."""

  def __init__(self):
    self.catalog = CATALOG
    self.manifest = types.SimpleNamespace(items=len(RANKING), index_version="1-000000000000")
    self.asked = []

  def search(self, embeddings, k, boost_keys=None, boost_weights=None):
    self.asked.append(k)
    ids = np.array([RANKING[:k]] * len(embeddings), dtype=object)
    scores = np.array([[10.0 - n for n in range(k)]] * len(embeddings), np.float32)
    return ids, scores


class SpyHead:
  """The session model's in-process head, keeping the inputs of its last call."""

  def __init__(self, version_dir: str):
    self.head = InProcessHead(version_dir)
    self.model_version, self.signature = self.head.model_version, self.head.signature
    self.inputs = None

  def embed(self, inputs):
    self.inputs = inputs
    return self.head.embed(inputs)


class FakeStore:
  def get_many(self, user_ids, version):
    return [np.ones(session_model.DIMENSION, np.float32) if u == "u1" else None for u in user_ids]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
  version_dir = session_model.save(str(tmp_path_factory.mktemp("session_model")), "1")
  return Release(states_version=StatesVersion("1", "2026-01-25"), local_head=SpyHead(version_dir),
                 remote_head=None, retriever=FakeRetriever(),
                 cold_start=np.zeros(session_model.DIMENSION, np.float32), store=FakeStore())


@pytest.fixture(scope="module")
def client(release):
  manager = types.SimpleNamespace(current=release, refused=None)
  return TestClient(app_module.create_app(RetrievalService(manager), ServiceMetrics(),
                                          ServeConfig(serving_dir="unused", store_uri="unused")))


def _views(*items):
  return {"views": [{"item_id": item} for item in items]}


def _ask(client, context, **body):
  response = client.post("/v1/retrieve", json={"user_id": "u1", "k": 8, "context": context,
                                               **body})
  assert response.status_code == 200, response.text
  return response.json()


def _ids(answer):
  return [i["item_id"] for i in answer["items"]]


def test_the_session_items_come_first_most_recent_first_then_the_ranking(client):
  answer = _ask(client, _views("i2", "i1", "i2", "i3"))
  assert _ids(answer) == ["i2", "i1", "i3", "r0", "r1", "r2", "r3", "r4"]
  assert [i["pinned"] for i in answer["items"]] == [True] * 3 + [False] * 5
  scores = [i["score"] for i in answer["items"]]
  assert scores[:3] == [10.0] * 3 and scores == sorted(scores, reverse=True)
  assert answer["fallbacks"] == []


def test_excluded_items_are_neither_pinned_nor_ranked(client):
  answer = _ask(client, _views("i2", "i1", "i3"), exclude_item_ids=["i1", "r0"])
  assert _ids(answer) == ["i2", "i3", "r1", "r2", "r3", "r4", "r5", "r6"]
  assert [i["pinned"] for i in answer["items"]][:3] == [True, True, False]


def test_the_search_is_asked_for_k_plus_exclusions_plus_pins(client, release):
  _ask(client, _views("i2", "i1", "i3"), exclude_item_ids=["r0"], k=5)
  assert release.retriever.asked[-1] == 5 + 1 + 3


def test_a_short_k_keeps_the_most_recent_pins(client):
  answer = _ask(client, _views("i4", "i5", "i6"), k=2)
  assert _ids(answer) == ["i4", "i5"] and all(i["pinned"] for i in answer["items"])


def test_pins_read_as_many_views_as_the_model(client):
  items = [f"i{n}" for n in range(1, 13)]
  answer = _ask(client, _views(*items), k=12)
  assert _ids(answer)[:session_model.VIEWS] == items[:session_model.VIEWS]
  assert sum(i["pinned"] for i in answer["items"]) == session_model.VIEWS


def test_one_item_id_is_a_session_of_one_view(client, release):
  inline = _ask(client, {"item_id": "i2"})
  assert inline == {**_ask(client, _views("i2")), "timings_ms": inline["timings_ms"]}
  assert _ids(inline)[0] == "i2" and inline["items"][0]["pinned"]
  assert list(release.local_head.inputs[f.CONTEXT_ITEM_ID][0, :2]) == ["i2", ""]


def test_the_head_gets_the_session_resolved_through_the_catalog(client, release):
  _ask(client, {"views": [{"item_id": "i2"}, {"item_id": "i7", "seconds_ago": 30},
                          {"categories": ["c5"], "confidences": [0.5]},
                          {"item_id": "i8", "seconds_ago": 90}]})
  inputs = release.local_head.inputs
  assert list(inputs[f.CONTEXT_ITEM_ID][0, :5]) == ["i2", "i7", "", "i8", ""]
  assert list(inputs[f.CONTEXT_AGE_SECONDS][0, :5]) == [0, 30, 30, 90, 0]  # left out: as before
  assert list(inputs[f.CONTEXT_CATEGORIES][0, 1, :3]) == ["c1", "c9", ""]  # the catalog's
  assert list(inputs[f.CONTEXT_CONFIDENCES][0, 2, :2]) == [0.5, 0.0]
  assert inputs[f.CONTEXT_CATEGORIES].shape == (1, session_model.VIEWS, session_model.CATEGORIES)


def test_an_unknown_item_is_dropped_or_keeps_its_categories_and_is_flagged(client, release):
  answer = _ask(client, {"views": [{"item_id": "nope"}, {"item_id": "i4"},
                                   {"item_id": "gone", "categories": ["c1"]}]})
  assert answer["fallbacks"] == [fb.UNKNOWN_CONTEXT_ITEM]
  assert [i["item_id"] for i in answer["items"] if i["pinned"]] == ["i4"]
  assert list(release.local_head.inputs[f.CONTEXT_ITEM_ID][0, :3]) == ["i4", "", ""]
  assert release.local_head.inputs[f.CONTEXT_CATEGORIES][0, 1, 0] == "c1"


def test_resolve_context_of_nothing_is_no_context():
  context, unknown = resolve_context(None, CATALOG)
  assert context.empty and not context.views and not unknown
  request = s.RetrieveRequest(user_id="u", context={"views": [{"item_id": "nope"}]})
  context, unknown = resolve_context(request.context, CATALOG)
  assert not context.views and unknown


def test_the_request_log_counts_the_views(client, caplog):
  with caplog.at_level("INFO", logger="ctxrec.requests"):
    _ask(client, _views("i1", "i2", "i3"))
  lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ctxrec.requests"]
  assert lines[-1]["views"] == 3 and lines[-1]["context"]


@pytest.mark.parametrize("context, field", [
    ({"views": [{"item_id": "i1"}] * (s.MAX_REQUEST_VIEWS + 1)}, "context.views"),
    ({"views": []}, "context.views"),
    ({"views": "i1"}, "context.views"),
    ({"views": ["i1"]}, "context.views.0"),
    ({"views": [{"item_id": "i1", "seconds_ago": "soon"}]}, "context.views.0.seconds_ago"),
    ({"views": [{"item_id": "i1", "seconds_ago": -1}]}, "context.views.0.seconds_ago"),
    ({"views": [{"item_id": "i1", "seconds_ago": 1.5}]}, "context.views.0.seconds_ago"),
    ({"views": [{"item_id": "i1", "seconds_ago": s.MAX_SECONDS_AGO + 1}]},
     "context.views.0.seconds_ago"),
    ({"views": [{"item_id": 7}]}, "context.views.0.item_id"),
    ({"views": [{"item_id": "i1"}, {}]}, "context.views.1"),
    ({"views": [{"item_id": "i1", "page": "home"}]}, "context.views.0.page"),
    ({"views": [{"categories": ["c1"], "confidences": [0.5, 0.5]}]},
     "context.views.0.confidences"),
    ({"views": [{"item_id": "i1"}], "item_id": "i2"}, "context.views"),
    ({"views": [{"item_id": "i1", "seconds_ago": 60}, {"item_id": "i2", "seconds_ago": 30}]},
     "context.views"),
    ({"seconds_ago": 5}, "context"),
    ({"item_id": "i1", "seconds_ago": "soon"}, "context.seconds_ago"),
])
def test_a_bad_session_is_a_422_naming_the_field(client, context, field):
  response = client.post("/v1/retrieve", json={"user_id": "u1", "context": context})
  assert response.status_code == 422, response.text
  errors = response.json()["errors"]
  assert field in [e["field"] for e in errors], errors
  assert all(e["message"] for e in errors)


def test_a_batch_names_the_request_of_a_bad_session(client):
  bad = {"user_id": "u1", "context": {"views": [{"item_id": "i1"}] * 17}}
  response = client.post("/v1/retrieve/batch", json={"requests": [
      {"user_id": "u1", "context": _views("i1")}, bad]})
  assert response.status_code == 422
  assert response.json()["errors"][0]["field"] == "requests.1.context.views"


def test_the_openapi_documents_the_session(client):
  schemas = client.get("/openapi.json").json()["components"]["schemas"]
  views = schemas["ContextIn"]["properties"]["views"]
  assert "most recent first" in json.dumps(views)
  assert f"{s.MAX_REQUEST_VIEWS}" in json.dumps(views)
  assert set(schemas["ViewIn"]["properties"]) == {"item_id", "categories", "confidences",
                                                   "seconds_ago"}
