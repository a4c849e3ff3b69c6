"""Both StateStore backends, so one suite runs against each: SQLite in a temp file, Redis on a
real redis-server started for the session on a free loopback port."""
import os

import pytest
import redis

from ctxrec.serving import feature_store
from ctxrec.serving.feature_store.local_redis import LocalRedis

BACKENDS = ("sqlite", "redis")


@pytest.fixture(scope="session")
def redis_server():
  with LocalRedis() as server:
    yield server


@pytest.fixture(params=BACKENDS)
def store_uri(request, tmp_path, redis_server) -> str:
  """A fresh, empty store of each backend: a test using it runs once per backend."""
  if request.param == "sqlite":
    return f"sqlite:///{os.path.join(tmp_path, 'states.sqlite').lstrip('/')}"
  client = redis.Redis.from_url(redis_server.uri)
  client.flushdb()
  client.close()
  return redis_server.uri


@pytest.fixture
def store(store_uri):
  with feature_store.open_store(store_uri) as opened:
    yield opened


@pytest.fixture
def raw_state(store_uri):
  """Reads the bytes a backend holds for a user without going through the StateStore."""
  return lambda version, user_id: _raw_state(store_uri, version, user_id)


def _raw_state(store_uri: str, version, user_id: str) -> bytes:
  if store_uri.startswith("sqlite"):
    import sqlite3
    from ctxrec.serving.feature_store import sqlite_store
    with sqlite3.connect(sqlite_store.sqlite_path(store_uri)) as db:
      table = sqlite_store._table(version)  # pylint: disable=protected-access
      return db.execute(f'SELECT state FROM "{table}" WHERE user_id = ?', (user_id,)).fetchone()[0]
  client = redis.Redis.from_url(store_uri)
  try:
    return client.hget(f"ctxrec:states:{{{version}}}", user_id)
  finally:
    client.close()
