"""Who may ask: an optional bearer token guards everything but the probes, and /docs and
/openapi.json are served on loopback or when asked for."""
import pytest
from fastapi.testclient import TestClient

from ctxrec.serving.service import server

TOKEN = "a-long-random-token"
GUARDED = [("POST", "/v1/retrieve", {"user_id": "u1", "k": 3}),
           ("POST", "/v1/retrieve/batch", {"requests": [{"user_id": "u1"}]}),
           ("GET", "/metrics", None)]


def _client(tiny_release, **options) -> TestClient:
  serving_dir, store_uri, _ = tiny_release
  return TestClient(server.build(server.ServeConfig(serving_dir, store_uri, **options)).app)


@pytest.fixture(scope="module")
def guarded(tiny_release, tmp_path_factory):
  token_file = tmp_path_factory.mktemp("secrets") / "token"
  token_file.write_text(TOKEN + "\n")  # as `kubectl create secret` or an editor may leave it
  return _client(tiny_release, auth_token_file=str(token_file))


@pytest.mark.parametrize("method, path, body", GUARDED)
def test_without_the_token_every_guarded_path_is_a_401(guarded, method, path, body):
  for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN},
                  {"authorization": f"Basic {TOKEN}"}):
    response = guarded.request(method, path, json=body, headers=headers)
    assert response.status_code == 401, (headers, response.text)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["field"] == "Authorization"
  response = guarded.request(method, path, json=body,
                             headers={"authorization": f"Bearer {TOKEN}"})
  assert response.status_code == 200, response.text


def test_the_probes_stay_open_and_refusals_are_counted(guarded):
  assert guarded.get("/healthz").status_code == 200
  assert guarded.get("/readyz").status_code == 200
  guarded.post("/v1/retrieve", json={"user_id": "u1"})
  metrics = guarded.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).text
  assert 'ctxrec_requests_total{outcome="unauthorized"}' in metrics


def test_an_empty_or_missing_token_file_is_refused(tiny_release, tmp_path):
  empty = tmp_path / "empty"
  empty.write_text("\n")
  with pytest.raises(ValueError, match="the file is empty"):
    _client(tiny_release, auth_token_file=str(empty))
  with pytest.raises(ValueError, match="no such file"):
    _client(tiny_release, auth_token_file=str(tmp_path / "absent"))


@pytest.mark.parametrize("host, docs, served", [
    ("127.0.0.1", None, True), ("::1", None, True), ("localhost", None, True),
    ("0.0.0.0", None, False), ("10.1.2.3", None, False), ("0.0.0.0", True, True),
    ("127.0.0.1", False, False)])
def test_docs_are_served_on_loopback_or_when_asked(tiny_release, host, docs, served):
  client = _client(tiny_release, host=host, docs=docs)
  for path in ("/docs", "/openapi.json"):
    assert client.get(path).status_code == (200 if served else 404)
  assert client.post("/v1/retrieve", json={"user_id": "u1"}).status_code == 200
