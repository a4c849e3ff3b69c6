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


@pytest.fixture
def write_raw_current(store_uri):
  """Sets the store's `current` pointer to any text, as a hostile or careless writer could."""
  return lambda text: _write_raw_current(store_uri, text)


def _write_raw_current(store_uri: str, text: str) -> None:
  if store_uri.startswith("sqlite"):
    import sqlite3
    from ctxrec.serving.feature_store import sqlite_store
    with sqlite3.connect(sqlite_store.sqlite_path(store_uri)) as db:
      db.execute("INSERT INTO pointer VALUES ('current', ?) ON CONFLICT(name) DO UPDATE SET "
                 "version = excluded.version", (text,))
      db.execute("INSERT INTO versions VALUES (?, ?, '2026-03-01', 8, 0, 1, 0, 0, x'')",
                 (text, text.partition("@")[0]))
    return
  client = redis.Redis.from_url(store_uri)
  try:
    client.set("ctxrec:current", text)
    client.zadd("ctxrec:versions", {text: 0})
    client.hset(f"ctxrec:version:{{{text}}}", mapping={
        "model_version": text.partition("@")[0], "serving_date": "2026-03-01", "dimension": 8,
        "rows": 0, "complete": 1, "created": 0, "published": 0, "cold_start": b""})
  finally:
    client.close()
