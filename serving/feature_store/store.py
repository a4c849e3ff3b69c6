"""The StateStore interface: versioned daily history states, published whole or not at all.

A version is (model version, serving date). Publishing writes a new version beside the current
one, counts its rows, then marks it complete and makes it current in one atomic step; a
publish that dies half way leaves the previous version current and readable, and its rerun
starts the new version over. Complete versions are immutable; the newest `keep` are kept.
States are raw little-endian float32 (no pickle), their dimension checked on every read.
"""
import abc
import dataclasses
import logging
import urllib.parse
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, TypeVar

import numpy as np

from ctxrec import versions

STATE_DTYPE = np.dtype("<f4")
DEFAULT_KEEP_VERSIONS = 3
_VERSION_SEPARATOR = "@"

Batch = Tuple[Sequence[str], np.ndarray]  # user ids, states [n, dimension]
T = TypeVar("T")


class StateStoreError(RuntimeError):
  """The store cannot do what was asked; the message names the store, the version and the fix."""


@dataclasses.dataclass(frozen=True, order=True)
class StatesVersion:
  """Identifies one day's states of one model: `<model_version>@<serving_date>`."""
  model_version: str
  serving_date: str  # YYYY-MM-DD (UTC): the states answer requests on this day

  def __post_init__(self):
    versions.model_version(self.model_version, "StatesVersion.model_version")
    versions.serving_date(self.serving_date, "StatesVersion.serving_date")

  def __str__(self) -> str:
    return f"{self.model_version}{_VERSION_SEPARATOR}{self.serving_date}"

  @classmethod
  def parse(cls, text: str) -> "StatesVersion":
    model_version, separator, serving_date = text.partition(_VERSION_SEPARATOR)
    if not separator:
      raise versions.VersionError(f"{text!r} is not a states version; write MODEL_VERSION"
                       f"{_VERSION_SEPARATOR}YYYY-MM-DD (see `ctxrec states list`)")
    return cls(model_version, serving_date)


@dataclasses.dataclass(frozen=True)
class VersionInfo:
  """What the store knows about one version."""
  version: StatesVersion
  dimension: int
  rows: int  # rows written so far; final once complete
  complete: bool
  created: float  # Unix seconds the publish started
  published: Optional[float]  # Unix seconds it became complete


@dataclasses.dataclass(frozen=True)
class PublishResult:
  version: StatesVersion
  rows: int
  already_published: bool  # the version was complete before: nothing was rewritten
  pruned: Tuple[StatesVersion, ...]


def encode_state(state: np.ndarray) -> bytes:
  return np.ascontiguousarray(state, dtype=STATE_DTYPE).tobytes()


def decode_state(blob: bytes, dimension: int, where: str) -> np.ndarray:
  """The state in `blob`, which must hold exactly `dimension` float32 values."""
  if len(blob) != dimension * STATE_DTYPE.itemsize:
    raise StateStoreError(f"{where}: a stored state has {len(blob)} bytes, expected "
                          f"{dimension * STATE_DTYPE.itemsize} ({dimension} float32); the "
                          f"version is corrupt: republish it")
  return np.frombuffer(blob, dtype=STATE_DTYPE)


def valid_records(records: Iterable[T], info: Callable[[T], Optional[VersionInfo]],
                  where: str) -> List[VersionInfo]:
  """The records that are valid versions: one written by hand or by a hostile writer (a path
  for a model version, say) is logged and skipped, never read as a version."""
  infos = []
  for record in records:
    try:
      infos.append(info(record))
    except versions.VersionError as exc:
      logging.warning("%s: skipping an invalid version record: %s", where, exc)
  return [found for found in infos if found is not None]


def redacted(uri: str) -> str:
  """A store URI without its password, fit for messages, logs and metadata."""
  parsed = urllib.parse.urlparse(uri)
  if parsed.password:
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@")).geturl()
  return uri


class StateStore(abc.ABC):
  """Daily history states by (version, user), with one `current` version."""

  def __init__(self, uri: str):
    self.uri = redacted(uri)  # what messages show; backends keep what they connect with

  # ---- Backend primitives. ----
  @abc.abstractmethod
  def info(self, version: StatesVersion) -> Optional[VersionInfo]:
    """The version's record, or None when the store has never seen it."""

  @abc.abstractmethod
  def versions(self) -> List[VersionInfo]:
    """Every version in the store, complete or not, newest first."""

  @abc.abstractmethod
  def current(self) -> Optional[StatesVersion]:
    """The version requests are served from, or None before the first publish."""

  @abc.abstractmethod
  def _start(self, version: StatesVersion, dimension: int, cold_start: bytes) -> None:
    """Creates the version empty and incomplete, discarding any partial earlier attempt."""

  @abc.abstractmethod
  def _write(self, version: StatesVersion, user_ids: Sequence[str],
             blobs: Sequence[bytes]) -> None:
    """Upserts one batch of states (a rerun never duplicates a user)."""

  @abc.abstractmethod
  def _count(self, version: StatesVersion) -> int:
    """Rows actually stored for the version."""

  @abc.abstractmethod
  def _complete_and_flip(self, version: StatesVersion, rows: int) -> None:
    """Marks the version complete and makes it current, atomically."""

  @abc.abstractmethod
  def _flip(self, version: StatesVersion) -> None:
    """Makes a complete version current (one atomic write)."""

  @abc.abstractmethod
  def _drop(self, version: StatesVersion) -> None:
    """Deletes the version's states and record."""

  @abc.abstractmethod
  def _read(self, version: StatesVersion,
            user_ids: Sequence[str]) -> Optional[Tuple[int, List[Optional[bytes]]]]:
    """(dimension, raw states; None where a user has none) in one round trip, or None when
    the version is not complete (never published, half written or deleted)."""

  @abc.abstractmethod
  def _read_cold_start(self, version: StatesVersion) -> Optional[Tuple[int, bytes]]:
    """(dimension, the state of an empty history), or None when the version is not complete."""

  def close(self) -> None:
    """Releases connections."""

  # ---- Publishing. ----
  def publish(self, version: StatesVersion, dimension: int, cold_start: np.ndarray,
              batches: Iterable[Batch], expected_rows: Optional[int] = None,
              keep: int = DEFAULT_KEEP_VERSIONS,
              progress: Optional[Callable[[int], None]] = None) -> PublishResult:
    """Writes a version beside the current one and flips to it only once every row is counted."""
    if keep < 1:
      raise ValueError(f"keep must be >= 1, got {keep}")
    existing = self.info(version)
    if existing is not None and existing.complete:
      return self._republish(existing, dimension, expected_rows, keep)
    self._start(version, dimension, encode_state(self._checked(cold_start, dimension, version)))
    written = 0
    for user_ids, states in batches:
      states = self._checked(states, dimension, version)
      if len(user_ids) != len(states):
        raise ValueError(f"{version}: a batch has {len(user_ids)} user ids and {len(states)} "
                         f"states")
      self._write(version, list(user_ids), [encode_state(s) for s in states])
      written += len(user_ids)
      if progress:
        progress(written)
    stored = self._count(version)
    expected = written if expected_rows is None else expected_rows
    if stored != expected or stored != written:
      raise StateStoreError(
          f"{self.uri}: version {version} holds {stored} states after writing {written} "
          f"(expected {expected}); duplicate user ids or a concurrent writer? The current "
          f"version ({self.current()}) is unchanged")
    self._complete_and_flip(version, stored)
    logging.info("%s: published %s (%d states); it is current", self.uri, version, stored)
    return PublishResult(version, stored, False, self.prune(keep))

  def _republish(self, existing: VersionInfo, dimension: int, expected_rows: Optional[int],
                 keep: int) -> PublishResult:
    """A second publish of a complete version: no rewrite; it becomes current again."""
    version = existing.version
    if existing.dimension != dimension:
      raise StateStoreError(
          f"{self.uri}: version {version} is already published with dimension "
          f"{existing.dimension}, not {dimension}; a model version has one state dimension")
    if expected_rows is not None and expected_rows != existing.rows:
      raise StateStoreError(
          f"{self.uri}: version {version} is already published with {existing.rows} states, "
          f"this publish has {expected_rows}; versions are immutable: delete it with "
          f"`ctxrec states delete {version}` to replace it")
    if self.current() != version:
      self._flip(version)
    logging.info("%s: %s was already published (%d states); it is current", self.uri, version,
                 existing.rows)
    return PublishResult(version, existing.rows, True, self.prune(keep))

  @staticmethod
  def _checked(states: np.ndarray, dimension: int, version: StatesVersion) -> np.ndarray:
    states = np.asarray(states, dtype=STATE_DTYPE)
    if states.shape[-1:] != (dimension,):
      raise StateStoreError(f"{version}: states of shape {states.shape} do not have the "
                            f"version's dimension {dimension}")
    finite = np.isfinite(states).reshape(-1, dimension).all(axis=1)
    if not finite.all():
      raise StateStoreError(f"{version}: {int((~finite).sum())} states hold NaN or infinite "
                            f"values (first at row {int(np.argmin(finite))} of its batch); the "
                            f"model that encoded them is broken: nothing was made current")
    return states

  def prune(self, keep: int = DEFAULT_KEEP_VERSIONS) -> Tuple[StatesVersion, ...]:
    """Deletes all but the newest `keep` complete versions; never the current one."""
    current = self.current()
    complete = [v for v in self.versions() if v.complete]
    complete.sort(key=lambda v: v.published or 0.0, reverse=True)
    doomed = tuple(v.version for v in complete[keep:] if v.version != current)
    for version in doomed:
      self._drop(version)
      logging.info("%s: deleted %s (keeping the newest %d)", self.uri, version, keep)
    return doomed

  def rollback(self, version: StatesVersion) -> None:
    """Makes an earlier complete version current again."""
    self._require_complete(version)
    self._flip(version)

  def delete(self, version: StatesVersion) -> None:
    """Deletes a version that is not current."""
    if self.info(version) is None:
      raise StateStoreError(f"{self.uri}: no version {version}; `ctxrec states list` shows them")
    if self.current() == version:
      raise StateStoreError(f"{self.uri}: {version} is current; roll back to another version "
                            f"before deleting it")
    self._drop(version)

  # ---- Reading. ----
  def get(self, user_id: str, version: Optional[StatesVersion] = None) -> Optional[np.ndarray]:
    """The user's state, or None when the user has no history (serve the cold-start state)."""
    return self.get_many([user_id], version)[0]

  def get_many(self, user_ids: Sequence[str],
               version: Optional[StatesVersion] = None) -> List[Optional[np.ndarray]]:
    """States of many users in one round trip; None where a user has no history."""
    version = version or self._require_current()
    found = self._read(version, list(user_ids))
    if found is None:
      raise self._not_complete(version)
    dimension, blobs = found
    where = f"{self.uri} {version}"
    return [None if blob is None else decode_state(blob, dimension, where) for blob in blobs]

  def cold_start(self, version: Optional[StatesVersion] = None) -> np.ndarray:
    """The state of a user without history in the version."""
    version = version or self._require_current()
    found = self._read_cold_start(version)
    if found is None:
      raise self._not_complete(version)
    return decode_state(found[1], found[0], f"{self.uri} {version} cold start")

  def _require_current(self) -> StatesVersion:
    current = self.current()
    if current is None:
      raise StateStoreError(f"{self.uri}: no states published yet; run `ctxrec daily`")
    return current

  def _require_complete(self, version: StatesVersion) -> VersionInfo:
    info = self.info(version)
    if info is None or not info.complete:
      raise self._not_complete(version, info)
    return info

  def _not_complete(self, version: StatesVersion,
                    info: Optional[VersionInfo] = None) -> StateStoreError:
    info = info or self.info(version)
    state = "is incomplete (its publish did not finish)" if info else "does not exist"
    return StateStoreError(f"{self.uri}: version {version} {state}; `ctxrec states list` shows "
                           f"the complete ones")

  def __enter__(self) -> "StateStore":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
