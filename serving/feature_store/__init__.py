"""Versioned daily history states: `open_store(uri)` gives the backend the URI names."""
import sqlite3
import urllib.parse
from typing import Optional

import redis

from ctxrec.serving.feature_store.store import DEFAULT_KEEP_VERSIONS  # noqa: F401
from ctxrec.serving.feature_store.store import PublishResult  # noqa: F401
from ctxrec.serving.feature_store.store import StateStore  # noqa: F401
from ctxrec.serving.feature_store.store import StateStoreError
from ctxrec.serving.feature_store.store import StatesVersion  # noqa: F401
from ctxrec.serving.feature_store.store import VersionInfo  # noqa: F401

URI_FORMS = "sqlite:///PATH/states.sqlite or redis://HOST:PORT/DB"
# What a store raises when it cannot be reached or read right now (the service falls back).
UNAVAILABLE_ERRORS = (StateStoreError, redis.exceptions.RedisError, sqlite3.Error, OSError)


def open_store(uri: str, timeout_s: Optional[float] = None) -> StateStore:
  """The StateStore at `uri`: sqlite:///path (embedded) or redis://host:port/db; `timeout_s`
  bounds a networked store's calls (a request path wants milliseconds, publishing seconds)."""
  scheme = urllib.parse.urlparse(uri).scheme
  if scheme == "sqlite":
    from ctxrec.serving.feature_store.sqlite_store import SqliteStateStore, sqlite_path  # pylint: disable=g-import-not-at-top
    return SqliteStateStore(sqlite_path(uri))
  if scheme in ("redis", "rediss", "unix"):
    from ctxrec.serving.feature_store.redis_store import RedisStateStore  # pylint: disable=g-import-not-at-top
    return RedisStateStore(uri, timeout_s)
  raise StateStoreError(f"{uri!r}: unknown state store scheme {scheme!r}; use {URI_FORMS}")
