"""Dependencies failing mid-traffic: TF Serving killed, Redis stopped. Every request still gets
a 200 with the fallback named, never a 5xx."""
import json
import os
import sqlite3
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ctxrec.serving import feature_store
from ctxrec.serving.feature_store import sqlite_store
from ctxrec.serving.feature_store.local_redis import LocalRedis
from ctxrec.serving.service import fallbacks as fb
from ctxrec.serving.service import server

from ctxrec.serving.tf_serving.model_config import MODEL_NAME

import tf_serving_double  # noqa: E402  (tests/serving, put on sys.path by its conftest)


def _traffic(client, user_id: str, seconds_before: float, fail, seconds_after: float):
  """Requests from 3 threads; `fail()` runs in between. Returns (status, fallbacks) in order,
  and the number of results before `fail` started and after it returned."""
  results, stop = [], threading.Event()

  def hammer():
    while not stop.is_set():
      response = client.post("/v1/retrieve", json={"user_id": user_id, "k": 5})
      results.append((response.status_code, tuple(response.json().get("fallbacks", ()))))
  threads = [threading.Thread(target=hammer) for _ in range(3)]
  for thread in threads:
    thread.start()
  time.sleep(seconds_before)
  started = len(results)
  fail()
  done = len(results)
  time.sleep(seconds_after)
  stop.set()
  for thread in threads:
    thread.join()
  return results, started, done + len(threads)


def test_tf_serving_killed_mid_traffic_falls_back_in_process(tiny_release):
  serving_dir, store_uri, _ = tiny_release
  double = tf_serving_double.TfServingDouble(MODEL_NAME, os.path.join(serving_dir, MODEL_NAME))
  double.start()
  try:
    service = server.build(server.ServeConfig(
        serving_dir=serving_dir, store_uri=store_uri, tf_serving=double.grpc_target,
        head_timeout_ms=500, breaker_failures=2, breaker_reset_seconds=0.5))
    results, started, done = _traffic(TestClient(service.app), "nobody", 1.0, double.stop, 2.0)
  finally:
    double.stop()
  assert {status for status, _ in results} == {200}
  before = [flags for _, flags in results[:started]]
  assert before and all(fb.TF_SERVING_UNAVAILABLE not in flags for flags in before)
  after = [flags for _, flags in results[done:]]
  assert any(fb.TF_SERVING_UNAVAILABLE in flags for flags in after)
  assert any(fb.TF_SERVING_CIRCUIT_OPEN in flags for flags in after)
  assert all(fb.TF_SERVING_UNAVAILABLE in flags or fb.TF_SERVING_CIRCUIT_OPEN in flags
             for flags in after)
  assert double.calls > 0


def _copy_to_redis(store_uri: str, redis_uri: str) -> str:
  """Publishes the current SQLite version into Redis; returns a user with a state."""
  with feature_store.open_store(store_uri) as source, feature_store.open_store(redis_uri) as target:
    version = source.current()
    with sqlite3.connect(sqlite_store.sqlite_path(store_uri)) as db:
      table = sqlite_store._table(version)  # pylint: disable=protected-access
      users = [r[0] for r in db.execute(f'SELECT user_id FROM "{table}" WHERE user_id != ""')]
    states = np.stack(source.get_many(users, version))
    target.publish(version, states.shape[1], source.cold_start(version), [(users, states)])
  return users[0]


def test_redis_stopped_mid_traffic_serves_the_cold_start_state(tiny_release):
  serving_dir, store_uri, _ = tiny_release
  with LocalRedis() as redis_server:
    user = _copy_to_redis(store_uri, redis_server.uri)
    service = server.build(server.ServeConfig(serving_dir=serving_dir,
                                              store_uri=redis_server.uri))
    assert service.manager.current is not None
    client = TestClient(service.app)
    results, started, done = _traffic(client, user, 0.5, redis_server.stop, 1.0)
    assert not service.manager.refresh()  # keeps the release while the store is down
  assert {status for status, _ in results} == {200}
  assert all(flags == () for _, flags in results[:started])
  assert results[done:] and all(flags == (fb.STATE_STORE_UNAVAILABLE,)
                                for _, flags in results[done:])
  cold = client.post("/v1/retrieve", json={"user_id": user, "k": 5}).json()
  nobody = client.post("/v1/retrieve", json={"user_id": "nobody", "k": 5}).json()
  assert cold["fallbacks"] == [fb.STATE_STORE_UNAVAILABLE]
  assert cold["items"] == nobody["items"]  # the cold-start state for everyone


def test_a_non_finite_state_is_answered_from_the_cold_start_never_with_nan(release_copy):
  """A NaN state written into the store behind the publisher's back (publish refuses one): the
  head's NaN embedding is flagged and replaced, and the answer stays strict JSON."""
  serving_dir, store_uri, _ = release_copy
  service = server.build(server.ServeConfig(serving_dir=serving_dir, store_uri=store_uri))
  release = service.manager.current
  with sqlite3.connect(sqlite_store.sqlite_path(store_uri)) as db:
    table = sqlite_store._table(release.states_version)  # pylint: disable=protected-access
    user, state = db.execute(f'SELECT user_id, state FROM "{table}" WHERE user_id != "" '
                             f'LIMIT 1').fetchone()
    poisoned = np.full(len(state) // 4, np.nan, "<f4").tobytes()
    db.execute(f'UPDATE "{table}" SET state = ? WHERE user_id = ?', (poisoned, user))
  client = TestClient(service.app)
  response = client.post("/v1/retrieve/batch", json={"requests": [
      {"user_id": user, "k": 5, "context": {"categories": ["c0"]}}, {"user_id": "nobody", "k": 5}]})
  assert response.status_code == 200
  answers = json.loads(response.text, parse_constant=lambda c: pytest.fail(f"{c} in the body"))
  poisoned_answer, nobody = answers["responses"]
  assert fb.NON_FINITE_EMBEDDING in poisoned_answer["fallbacks"]
  assert fb.NON_FINITE_EMBEDDING not in nobody["fallbacks"]
  # the cold start, without context (scores equal up to float32 rounding of the batch rows)
  assert [i["item_id"] for i in poisoned_answer["items"]] == [i["item_id"] for i in nobody["items"]]
  np.testing.assert_allclose([i["score"] for i in poisoned_answer["items"]],
                             [i["score"] for i in nobody["items"]], rtol=1e-5)
  assert all(np.isfinite(i["score"]) for i in poisoned_answer["items"])
