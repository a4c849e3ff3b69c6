"""The StateStore suite's fixtures (`store_uri`, one per backend, is in tests/conftest.py)."""
import pytest
import redis

from ctxrec.serving import feature_store


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
