"""The embedded StateStore: one SQLite file in WAL mode, a table of states per version.

A new version's table is written beside the current one in batched transactions; marking it
complete and moving the `current` pointer is one transaction. Readers in other threads or
processes keep reading the previous version until that commit.
"""
import contextlib
import hashlib
import os
import sqlite3
import threading
import time
import urllib.parse
from typing import Iterator, List, Optional, Sequence, Tuple

from ctxrec.serving.feature_store.store import StateStore, StateStoreError, StatesVersion
from ctxrec.serving.feature_store.store import VersionInfo, valid_records

SCHEME = "sqlite"
_CURRENT = "current"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS versions (version TEXT PRIMARY KEY, model_version TEXT NOT NULL,"
    " serving_date TEXT NOT NULL, dimension INTEGER NOT NULL, rows INTEGER NOT NULL,"
    " complete INTEGER NOT NULL, created REAL NOT NULL, published REAL, cold_start BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pointer (name TEXT PRIMARY KEY, version TEXT NOT NULL)",
)
_BUSY_TIMEOUT_SECONDS = 30.0
_MAX_VARIABLES = 900  # below SQLite's default limit of bound parameters per statement


def sqlite_path(uri: str) -> str:
  """The file of sqlite:///abs/path (absolute) or sqlite://rel/path (relative to the cwd)."""
  parsed = urllib.parse.urlparse(uri)
  path = parsed.netloc + parsed.path
  if parsed.scheme != SCHEME or not path or path.endswith("/"):
    raise StateStoreError(f"{uri!r}: not a SQLite store URI; write sqlite:///PATH/states.sqlite")
  return path


def sqlite_uri(path: str) -> str:
  return f"{SCHEME}:///{os.path.abspath(path).lstrip('/')}"


def _table(version: StatesVersion) -> str:
  """A table name derived from the version alone (no lookup needed on the read path)."""
  return "states_" + hashlib.sha1(str(version).encode()).hexdigest()[:20]


class SqliteStateStore(StateStore):
  """States in the SQLite file `path`; thread-safe (one connection per thread)."""

  def __init__(self, path: str):
    super().__init__(sqlite_uri(path))
    self.path = path
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
      raise StateStoreError(f"{self.uri}: folder {directory} does not exist; create it or "
                            f"point the store elsewhere")
    self._local = threading.local()
    self._opened: List[sqlite3.Connection] = []
    self._lock = threading.Lock()
    self._dimensions = {}  # complete versions are immutable: their dimension can be cached
    with self._transaction() as db:
      for statement in _SCHEMA:
        db.execute(statement)

  def _connection(self) -> sqlite3.Connection:
    """This thread's connection (autocommit; `_transaction` groups statements)."""
    db = getattr(self._local, "db", None)
    if db is None:
      try:
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None,
                             check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
      except sqlite3.DatabaseError as exc:
        raise StateStoreError(f"{self.uri}: cannot open as SQLite ({exc}); is it a ctxrec state "
                              f"store?") from exc
      db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process in WAL mode
      self._local.db = db
      with self._lock:
        self._opened.append(db)
    return db

  @contextlib.contextmanager
  def _transaction(self) -> Iterator[sqlite3.Connection]:
    """One atomic write transaction: all of its statements commit together or none does."""
    db = self._connection()
    db.execute("BEGIN IMMEDIATE")
    try:
      yield db
    except BaseException:
      db.execute("ROLLBACK")
      raise
    db.execute("COMMIT")

  def close(self) -> None:
    with self._lock:
      for db in self._opened:
        db.close()
      self._opened.clear()
    self._local = threading.local()

  @staticmethod
  def _info_from_row(row) -> VersionInfo:
    version, model_version, serving_date, dimension, rows, complete, created, published = row
    return VersionInfo(StatesVersion(model_version, serving_date), dimension, rows,
                       bool(complete), created, published)

  _INFO_COLUMNS = ("version, model_version, serving_date, dimension, rows, complete, created, "
                   "published")

  def info(self, version: StatesVersion) -> Optional[VersionInfo]:
    row = self._connection().execute(
        f"SELECT {self._INFO_COLUMNS} FROM versions WHERE version = ?", (str(version),)).fetchone()
    return self._info_from_row(row) if row else None

  def versions(self) -> List[VersionInfo]:
    rows = self._connection().execute(
        f"SELECT {self._INFO_COLUMNS} FROM versions ORDER BY created DESC").fetchall()
    return valid_records(rows, self._info_from_row, self.uri)

  def current(self) -> Optional[StatesVersion]:
    row = self._connection().execute("SELECT version FROM pointer WHERE name = ?",
                                     (_CURRENT,)).fetchone()
    return StatesVersion.parse(row[0]) if row else None

  def _start(self, version: StatesVersion, dimension: int, cold_start: bytes) -> None:
    table = _table(version)
    with self._transaction() as db:
      db.execute(f'DROP TABLE IF EXISTS "{table}"')
      db.execute(f'CREATE TABLE "{table}" (user_id TEXT PRIMARY KEY, state BLOB NOT NULL) '
                 f'WITHOUT ROWID')
      db.execute("INSERT OR REPLACE INTO versions VALUES (?, ?, ?, ?, 0, 0, ?, NULL, ?)",
                 (str(version), version.model_version, version.serving_date, dimension,
                  time.time(), cold_start))

  def _write(self, version: StatesVersion, user_ids: Sequence[str],
             blobs: Sequence[bytes]) -> None:
    with self._transaction() as db:
      db.executemany(f'INSERT OR REPLACE INTO "{_table(version)}" VALUES (?, ?)',
                     zip(user_ids, blobs))
      db.execute("UPDATE versions SET rows = rows + ? WHERE version = ?",
                 (len(user_ids), str(version)))

  def _count(self, version: StatesVersion) -> int:
    return self._connection().execute(f'SELECT COUNT(*) FROM "{_table(version)}"').fetchone()[0]

  def _complete_and_flip(self, version: StatesVersion, rows: int) -> None:
    with self._transaction() as db:
      db.execute("UPDATE versions SET complete = 1, rows = ?, published = ? WHERE version = ?",
                 (rows, time.time(), str(version)))
      self._set_pointer(db, version)

  def _flip(self, version: StatesVersion) -> None:
    with self._transaction() as db:
      self._set_pointer(db, version)

  @staticmethod
  def _set_pointer(db: sqlite3.Connection, version: StatesVersion) -> None:
    db.execute("INSERT INTO pointer VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
               "version = excluded.version", (_CURRENT, str(version)))

  def _drop(self, version: StatesVersion) -> None:
    with self._transaction() as db:
      db.execute(f'DROP TABLE IF EXISTS "{_table(version)}"')
      db.execute("DELETE FROM versions WHERE version = ?", (str(version),))
    self._dimensions.pop(version, None)

  def _dimension(self, version: StatesVersion) -> Optional[int]:
    if version not in self._dimensions:
      info = self.info(version)
      if info is None or not info.complete:
        return None
      self._dimensions[version] = info.dimension
    return self._dimensions[version]

  def _read(self, version: StatesVersion,
            user_ids: Sequence[str]) -> Optional[Tuple[int, List[Optional[bytes]]]]:
    dimension = self._dimension(version)
    if dimension is None:
      return None
    db, table, found = self._connection(), _table(version), {}
    try:
      for start in range(0, len(user_ids), _MAX_VARIABLES):
        chunk = user_ids[start:start + _MAX_VARIABLES]
        marks = ",".join("?" * len(chunk))
        found.update(db.execute(f'SELECT user_id, state FROM "{table}" WHERE user_id IN '
                                f'({marks})', chunk).fetchall())
    except sqlite3.OperationalError:  # the table was dropped: the version was deleted
      self._dimensions.pop(version, None)
      return None
    return dimension, [found.get(user_id) for user_id in user_ids]

  def _read_cold_start(self, version: StatesVersion) -> Optional[Tuple[int, bytes]]:
    row = self._connection().execute(
        "SELECT dimension, cold_start FROM versions WHERE version = ? AND complete = 1",
        (str(version),)).fetchone()
    return (row[0], row[1]) if row else None
