"""The retrieval service end to end on the tiny run's release: answers equal offline exact
search, bad input gets a 4xx naming the field, fallbacks are flagged, releases swap whole."""
import datetime
import glob
import os
import shutil
import threading
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from ctxrec.components import request_context
from ctxrec.components import user_history
from ctxrec.components.retrieval_evaluator import methods
from ctxrec.components.request_context import context_of_item
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.serving import feature_store
from ctxrec.serving.head.head import context_inputs
from ctxrec.serving.index import index_dir
from ctxrec.serving.service import fallbacks as fb
from ctxrec.serving.service import server
from ctxrec.serving.service.schemas import RetrieveResponse
from ctxrec.trainer import exported_model
from ctxrec.transform import category_keys
from ctxrec.transform import features as f

import release_builder  # noqa: E402  (tests/serving, put on sys.path by its conftest)

K = 10


def _service(serving_dir, store_uri, **options) -> server.Service:
  return server.build(server.ServeConfig(serving_dir=serving_dir, store_uri=store_uri,
                                         **options))


@pytest.fixture(scope="module")
def service(tiny_release):
  serving_dir, store_uri, _ = tiny_release
  return _service(serving_dir, store_uri)


@pytest.fixture(scope="module")
def client(service):
  return TestClient(service.app)


@pytest.fixture(scope="module")
def viewers(tiny_data, service):
  """(user, an item of the catalog) pairs of users with a published state."""
  release = service.manager.current
  events = pd.read_parquet(os.path.join(tiny_data, "events.parquet"))
  views = events[events[f.EVENT_TYPE] == f.EVENT_VIEW].drop_duplicates(f.USER_ID)
  pairs = [(u, i) for u, i in zip(views[f.USER_ID], views[f.ITEM_ID])]
  states = release.store.get_many([u for u, _ in pairs], release.states_version)
  return [pair for pair, state in zip(pairs, states) if state is not None][:40]


def _post(client, body, path="/v1/retrieve"):
  response = client.post(path, json=body)
  assert response.status_code == 200, response.text
  return response.json()


def test_answers_equal_offline_exact_search_up_to_the_index_recall(client, service, viewers,
                                                                   tiny_data):
  """serving_default on the history as of the serving day + exact scoring over the catalog."""
  release = service.manager.current
  model = release.local_head.model
  catalog = input_tables.load_items(os.path.join(tiny_data, "items.parquet"))
  items = input_tables.items_frame(catalog)
  item_embeddings = exported_model.embed_catalog(model.signatures, items)
  serving = model.signatures[f.SIGNATURE_SERVING_DEFAULT]
  specs = exported_model.signature_inputs(serving)
  width = int(specs[f.HISTORY_ITEM_IDS].shape[1])
  events = pd.read_parquet(os.path.join(tiny_data, "events.parquet"))
  conversions = events[events[f.EVENT_TYPE] == f.EVENT_CONVERSION]
  day = (datetime.date.fromisoformat(release.states_version.serving_date)
         - datetime.date(1970, 1, 1)).days
  histories, contexts = [], []
  for user, item in viewers:
    mine = conversions[conversions[f.USER_ID] == user]
    histories.append(user_history.history_at_day(
        user_history.sort_conversions(zip(mine[f.TIMESTAMP], mine[f.ITEM_ID])), day, width,
        catalog))
    contexts.append(context_of_item(item, catalog))
  inputs = {**exported_model.history_batch(histories, width),
            **context_inputs(specs, contexts, [{}] * len(viewers))}
  offline = exported_model.call(serving, inputs)
  scores = offline[f.USER_EMBEDDING] @ item_embeddings.T + category_keys.boost_scores(
      offline[f.BOOST_KEYS], offline[f.BOOST_WEIGHTS],
      category_keys.keys_of([categories[0] for categories in items[f.CATEGORIES]]))
  expected = np.argsort(-scores, axis=1, kind="stable")[:, :K]
  answers = _post(client, {"requests": [{"user_id": u, "context": {"item_id": i}, "k": K}
                                        for u, i in viewers]}, "/v1/retrieve/batch")["responses"]
  for answer, (_, viewed) in zip(answers, viewers):  # the viewed item first, then the model's
    assert answer["items"][0] == {**answer["items"][0], "item_id": viewed, "pinned": True}
    assert not any(i["pinned"] for i in answer["items"][1:])
  overlap = np.mean([len({a["item_id"] for a in answer["items"][1:]}
                         & set(items[f.ITEM_ID].iloc[row])) / (K - 1)
                     for answer, row in zip(answers, expected)])
  assert overlap >= release.retriever.manifest.recall["recall@10"] - 0.02
  assert all(a["fallbacks"] == [] for a in answers)
  user, viewed = viewers[0]
  excluded = _post(client, {"user_id": user, "context": {"item_id": viewed},
                            "exclude_item_ids": [viewed], "k": K})
  assert viewed not in [i["item_id"] for i in excluded["items"]]
  assert len(excluded["items"]) == K and not any(i["pinned"] for i in excluded["items"])
  one = _post(client, {"user_id": viewers[0][0], "context": {"item_id": viewers[0][1]}, "k": K})
  assert [i["item_id"] for i in one["items"]] == [i["item_id"] for i in answers[0]["items"]]
  np.testing.assert_allclose([i["score"] for i in one["items"]],
                             [i["score"] for i in answers[0]["items"]], rtol=1e-5)


def _histories_at_serving_day(service, tiny_data, users, catalog, width):
  """Each user's history as of the release's serving day: what the state store holds."""
  events = pd.read_parquet(os.path.join(tiny_data, "events.parquet"))
  conversions = events[events[f.EVENT_TYPE] == f.EVENT_CONVERSION]
  day = (datetime.date.fromisoformat(service.manager.current.states_version.serving_date)
         - datetime.date(1970, 1, 1)).days
  out = []
  for user in users:
    mine = conversions[conversions[f.USER_ID] == user]
    out.append(user_history.history_at_day(
        user_history.sort_conversions(zip(mine[f.TIMESTAMP], mine[f.ITEM_ID])), day, width,
        catalog))
  return out


def test_eval_sessions_are_answered_as_the_evaluator_ranks_them(client, service, tiny_data,
                                                                tiny_output):
  """100 eval examples' logged sessions: the service pins what the evaluator pins and ranks
  the rest as the evaluator's exact score does, up to the index's recall."""
  release = service.manager.current
  model = release.local_head.model
  serving = model.signatures[f.SIGNATURE_SERVING_DEFAULT]
  files = glob.glob(os.path.join(tiny_output("SequenceExampleGen", "examples"), "Split-eval",
                                 "*.gz"))
  requests = exported_model.example_requests(files, serving)
  users = set(u for u, s in zip(requests.user_ids, release.store.get_many(
      list(requests.user_ids), release.states_version)) if s is not None)
  rows = [r for r in np.flatnonzero(requests.has_context) if requests.user_ids[r] in users]
  rows = sorted(rows, key=lambda r: -len(requests.contexts[r].views))[:100]
  assert len(rows) == 100 and len(requests.contexts[rows[0]].views) >= 3
  catalog = input_tables.load_items(os.path.join(tiny_data, "items.parquet"))
  items = input_tables.items_frame(catalog)
  specs = exported_model.signature_inputs(serving)
  width = int(specs[f.HISTORY_ITEM_IDS].shape[1])
  views, _ = exported_model.session_widths(specs)
  contexts = [requests.contexts[r] for r in rows]
  inputs = {**exported_model.history_batch(_histories_at_serving_day(
      service, tiny_data, requests.user_ids[rows], catalog, width), width),
            **context_inputs(specs, contexts, [{}] * len(rows))}  # no demographics given
  offline = exported_model.call(serving, inputs)
  scores = (offline[f.USER_EMBEDDING] @ exported_model.embed_catalog(model.signatures, items).T
            + category_keys.boost_scores(offline[f.BOOST_KEYS], offline[f.BOOST_WEIGHTS],
                                         methods.Catalog.load(os.path.join(
                                             tiny_data, "items.parquet")).primary_keys))
  k = 100
  body = [{"user_id": requests.user_ids[r], "k": k,
           "context": {"views": [{"item_id": v.item_id, "seconds_ago": v.seconds_ago}
                                 for v in c.views]}} for r, c in zip(rows, contexts)]
  answers = _post(client, {"requests": body}, "/v1/retrieve/batch")["responses"]
  overlaps = []
  item_ids = items[f.ITEM_ID].to_numpy()
  for answer, context, row_scores in zip(answers, contexts, scores):
    pins = list(request_context.pinned_items(context, views=views))
    ids = [i["item_id"] for i in answer["items"]]
    assert ids[:len(pins)] == pins and [i["pinned"] for i in answer["items"]] == [
        n < len(pins) for n in range(len(ids))]
    ranked = item_ids[np.argsort(-row_scores, kind="stable")]
    expected = [i for i in ranked if i not in pins][:k - len(pins)]
    overlaps.append(len(set(ids[len(pins):]) & set(expected)) / len(expected))
  assert np.mean(overlaps) >= release.retriever.manifest.recall["recall@100"] - 0.02


def test_response_names_every_version_and_stage(client, service, viewers):
  answer = _post(client, {"user_id": viewers[0][0], "k": 5})
  RetrieveResponse.model_validate(answer)  # the documented schema (/docs), field for field
  release = service.manager.current
  assert len(answer["items"]) == 5
  scores = [i["score"] for i in answer["items"]]
  assert scores == sorted(scores, reverse=True)
  assert answer["model_version"] == release.model_version
  assert answer["states_version"] == str(release.states_version)
  assert answer["index_version"].startswith(release.model_version)
  assert set(answer["timings_ms"]) == {"state", "head", "ann", "total"}


def test_context_changes_the_answer_and_categories_resolve_like_the_item(client, service,
                                                                        viewers):
  user, item = viewers[0]
  catalog = service.manager.current.retriever.catalog
  by_item = _post(client, {"user_id": user, "context": {"item_id": item}})
  without = _post(client, {"user_id": user})
  assert by_item["items"] != without["items"]
  entry = catalog[item]
  by_categories = _post(client, {"user_id": user, "context": {
      "item_id": "never-seen-item", "categories": list(entry.categories),
      "confidences": list(entry.confidences)}})
  assert by_categories["fallbacks"] == [fb.UNKNOWN_CONTEXT_ITEM]


def test_a_session_pins_its_items_most_recent_first_and_reaches_the_head(client, viewers):
  user = viewers[0][0]
  items = list(dict.fromkeys(item for _, item in viewers))[:3]
  session = {"views": [{"item_id": item, "seconds_ago": 60 * n} for n, item in enumerate(items)]}
  answer = _post(client, {"user_id": user, "context": session, "k": K})
  assert [i["item_id"] for i in answer["items"][:3]] == items
  assert [i["pinned"] for i in answer["items"]] == [True] * 3 + [False] * (K - 3)
  assert len({i["item_id"] for i in answer["items"]}) == K
  scores = [i["score"] for i in answer["items"]]
  assert scores == sorted(scores, reverse=True) and answer["fallbacks"] == []
  one = _post(client, {"user_id": user, "context": {"item_id": items[0]}, "k": K})
  assert one == _post(client, {"user_id": user, "context": {"views": [{"item_id": items[0]}]},
                               "k": K}) | {"timings_ms": one["timings_ms"]}
  assert [i["score"] for i in one["items"]] != scores  # the older views move the embedding


def test_unknown_user_gets_the_cold_start_state(client, service):
  answer = _post(client, {"user_id": "nobody-at-all"})
  assert answer["fallbacks"] == [fb.UNKNOWN_USER]
  assert answer["items"]


def test_unknown_context_item_without_categories_is_the_no_context_answer(client, viewers):
  user = viewers[0][0]
  unknown = _post(client, {"user_id": user, "context": {"item_id": "never-seen-item"}})
  assert unknown["fallbacks"] == [fb.UNKNOWN_CONTEXT_ITEM]
  assert unknown["items"] == _post(client, {"user_id": user})["items"]


def test_excluded_items_are_left_out(client, viewers):
  user = viewers[0][0]
  first = _post(client, {"user_id": user, "k": 5})["items"]
  excluded = [first[0]["item_id"], first[2]["item_id"]]
  answer = _post(client, {"user_id": user, "k": 5, "exclude_item_ids": excluded})["items"]
  assert len(answer) == 5
  assert not {i["item_id"] for i in answer} & set(excluded)


def test_operations_endpoints(client, service):
  assert client.get("/healthz").json() == {"status": "ok"}
  ready = client.get("/readyz").json()
  assert ready["ready"] and ready["model_version"] == service.manager.current.model_version
  _post(client, {"user_id": "nobody-at-all"})
  metrics = client.get("/metrics").text
  assert 'ctxrec_requests_total{outcome="ok"}' in metrics
  assert f'ctxrec_fallbacks_total{{fallback="{fb.UNKNOWN_USER}"}}' in metrics
  assert 'ctxrec_stage_seconds_bucket{le="0.005",stage="ann"}' in metrics
  assert "ctxrec_release_info{" in metrics
  assert client.get("/docs").status_code == 200
  assert "/v1/retrieve" in client.get("/openapi.json").json()["paths"]


def test_not_ready_without_a_release(tmp_path):
  empty = _service(str(tmp_path / "serving"), feature_store.sqlite_store.sqlite_uri(
      str(tmp_path / "states.sqlite")))
  client = TestClient(empty.app)
  assert client.get("/readyz").status_code == 503
  response = client.post("/v1/retrieve", json={"user_id": "u"})
  assert response.status_code == 503 and "no complete release" in response.text


def test_the_request_log_has_one_line_per_request(client, caplog):
  import json  # pylint: disable=g-import-not-at-top
  with caplog.at_level("INFO", logger="ctxrec.requests"):
    _post(client, {"user_id": "nobody-at-all", "k": 3})
  lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ctxrec.requests"]
  assert len(lines) == 1
  assert lines[0]["fallbacks"] == [fb.UNKNOWN_USER] and lines[0]["items"] == 3


# ---- Releases: whole, of one version, swapped without dropping a request. ----

SWAP_DEADLINE_S = 60.0  # for 20 answers after the swap: a stuck service fails, not hangs, the test


def test_a_release_swap_under_concurrent_requests_drops_nothing(release_copy):
  serving_dir, store_uri, version = release_copy
  service = _service(serving_dir, store_uri)
  client = TestClient(service.app)
  new = str(int(version) + 1)
  results, stop = [], threading.Event()

  def hammer():
    while not stop.is_set():
      response = client.post("/v1/retrieve", json={"user_id": "nobody", "k": 5})
      results.append((response.status_code, response.json().get("model_version")))
  threads = [threading.Thread(target=hammer) for _ in range(4)]
  for thread in threads:
    thread.start()
  try:
    release_builder.new_version(serving_dir, store_uri, version, new)
    assert service.manager.refresh()
    before, deadline = len(results), time.monotonic() + SWAP_DEADLINE_S
    while len(results) < before + 20 and time.monotonic() < deadline:
      time.sleep(0.01)
  finally:
    stop.set()
    for thread in threads:
      thread.join()
  assert len(results) >= before + 20, f"{len(results) - before} answers in {SWAP_DEADLINE_S} s"
  assert {status for status, _ in results} == {200}
  versions = [v for _, v in results]
  assert set(versions) == {version, new}
  assert versions[-1] == new
  assert versions.index(new) > 0 and version not in versions[versions.index(new) + 50:]


def test_a_half_written_release_is_never_loaded(release_copy):
  serving_dir, store_uri, version = release_copy
  service = _service(serving_dir, store_uri)
  new = str(int(version) + 1)
  target = release_builder.new_version(serving_dir, store_uri, version, new, index=False)
  partial = os.path.join(serving_dir, "index", new)
  shutil.copytree(os.path.join(serving_dir, "index", version), partial)
  os.remove(os.path.join(partial, index_dir.MANIFEST_FILE))  # a build that did not finish
  with feature_store.open_store(store_uri) as store:
    assert store.current() == target
  assert not service.manager.refresh()
  client = TestClient(service.app)
  answer = _post(client, {"user_id": "nobody", "k": 3})
  assert answer["model_version"] == version  # the old release, with its own states
  assert answer["states_version"].startswith(version + "@")
  shutil.rmtree(partial)
  release_builder.copy_index(serving_dir, version, new)
  assert service.manager.refresh()
  assert _post(client, {"user_id": "nobody", "k": 3})["model_version"] == new


def test_an_index_of_another_model_version_is_refused(release_copy):
  serving_dir, store_uri, version = release_copy
  service = _service(serving_dir, store_uri)
  new = str(int(version) + 1)
  release_builder.new_version(serving_dir, store_uri, version, new, index=False)
  shutil.copytree(os.path.join(serving_dir, "index", version),
                  os.path.join(serving_dir, "index", new))  # still says `version` inside
  assert not service.manager.refresh()
  assert service.manager.current.model_version == version
