"""A release: the model, the catalog index and the daily states of ONE model version, loaded
whole, checked against each other, and swapped in one step.

The state store's current version names the release: its model version picks
SERVING_DIR/<model name>/<version>/ and SERVING_DIR/index/<version>/. A part that is missing,
partial or of another version keeps the previous release serving; so does a version that is not
data or a folder outside SERVING_DIR (serving_paths.py), which is refused and never loaded.
"""
import dataclasses
import logging
import threading
from typing import Callable, List, Optional, Tuple

import numpy as np

from ctxrec import progress
from ctxrec import versions
from ctxrec.components.request_context import NO_CONTEXT
from ctxrec.serving import feature_store
from ctxrec.serving import model_versions
from ctxrec.serving.feature_store import StatesVersion
from ctxrec.serving.head.head import ContextHead, HeadSignature
from ctxrec.serving.head.in_process import InProcessHead
from ctxrec.serving.index import index_dir
from ctxrec.serving.index.manifest import IndexDirError
from ctxrec.serving.index.retriever import Retriever
from ctxrec.serving.service import serving_paths
from ctxrec.serving.service.serving_paths import OutsideServingDirError

RemoteHeadFactory = Callable[[str], ContextHead]  # model version -> a head pinned to it


class ReleaseError(RuntimeError):
  """A release cannot be served: a part is missing, partial or of another model version."""


class UnsafeRelease(ReleaseError):
  """The store names a release the service must never load: by a version that is not data (a
  path, say), or with a folder that resolves outside the serving folder."""


REFUSED_UNSAFE = "unsafe"  # UnsafeRelease, or a current version in the store that is not data
REFUSED_INCOMPLETE = "incomplete"  # a part missing, partial, mismatched or unreadable


@dataclasses.dataclass(frozen=True)
class Refusal:
  """Why the store's current release is not served (the previous one still is)."""
  reason: str  # REFUSED_*
  message: str


@dataclasses.dataclass(frozen=True)
class Release:
  """Everything one request needs, of one model version; requests hold it for their duration."""
  states_version: StatesVersion
  local_head: InProcessHead
  remote_head: Optional[ContextHead]
  retriever: Retriever
  cold_start: np.ndarray
  store: feature_store.StateStore  # read at `states_version` explicitly, never "current"

  @property
  def model_version(self) -> str:
    return self.local_head.model_version

  @property
  def index_version(self) -> str:
    return self.retriever.manifest.index_version

  @property
  def signature(self) -> HeadSignature:
    return self.local_head.signature

  def describe(self) -> dict:
    return {"model_version": self.model_version, "index_version": self.index_version,
            "states_version": str(self.states_version), "items": self.retriever.manifest.items,
            "tf_serving": self.remote_head.name if self.remote_head else None}


class ReleaseLoader:
  """Loads releases from a serving folder (OUT/serving) and a state store."""

  def __init__(self, serving_dir: str, remote_head: Optional[RemoteHeadFactory] = None,
               index_threads: int = 1):
    self.serving_dir = serving_dir
    self.remote_head = remote_head
    self.index_threads = index_threads

  def load(self, states_version: StatesVersion, store: feature_store.StateStore,
           previous: Optional[Release] = None) -> Release:
    """The release of `states_version`, reusing the previous release's model and index when
    only the day's states changed; ReleaseError when a part is missing or mismatched."""
    version = states_version.model_version
    model, index = self._folders(states_version)
    if not model_versions.is_version_dir(model):
      raise ReleaseError(f"{states_version}: no model {model} (push it, or publish states of a "
                         f"pushed model)")
    try:
      manifest = index_dir.verify(index)
    except IndexDirError as exc:
      raise ReleaseError(f"{states_version}: {exc}") from exc
    reuse = (previous is not None and previous.model_version == version
             and previous.retriever.manifest.built_at == manifest.built_at)
    if reuse:
      head, remote, retriever = previous.local_head, previous.remote_head, previous.retriever
    else:
      self._check_confined(states_version, model, index)
      head = InProcessHead(model)
      retriever = Retriever(index, model_version=version, num_threads=self.index_threads)
      remote = self.remote_head(version) if self.remote_head else None
    cold_start = store.cold_start(states_version)
    _check_dimensions(states_version, head, retriever, cold_start)
    return Release(states_version, head, remote, retriever, cold_start, store)


  def _folders(self, states_version: StatesVersion) -> Tuple[str, str]:
    """(model folder, index folder) of a version; UnsafeRelease for a version that is not
    data or a folder outside the serving folder."""
    try:
      version = versions.model_version(states_version.model_version)
      return (serving_paths.model_dir(self.serving_dir, version),
              serving_paths.index_path(self.serving_dir, version))
    except (versions.VersionError, OutsideServingDirError) as exc:
      raise UnsafeRelease(f"{states_version}: {exc}") from exc

  def _check_confined(self, states_version: StatesVersion, *folders: str) -> None:
    try:
      for folder in folders:
        serving_paths.check_tree(self.serving_dir, folder)
    except OutsideServingDirError as exc:
      raise UnsafeRelease(f"{states_version}: {exc}") from exc

  def index_built_at(self, states_version: StatesVersion) -> Optional[float]:
    """When the version's index was built, or None when it has no complete index."""
    try:
      return index_dir.verify(self._folders(states_version)[1]).built_at
    except IndexDirError:
      return None


def _check_dimensions(version: StatesVersion, head: InProcessHead, retriever: Retriever,
                      cold_start: np.ndarray) -> None:
  """The parts must fit together: state -> head -> index (a warm-up call of the head, too), and
  the cold start, every request's last resort, must embed finitely."""
  if cold_start.shape != (head.signature.dimension,):
    raise ReleaseError(f"{version}: states of dimension {cold_start.shape[-1]}, the model's "
                       f"context_head takes {head.signature.dimension}")
  output = head.embed(head.signature.inputs(cold_start[np.newaxis], [NO_CONTEXT], [{}]))
  embedding = output.embeddings
  if not (np.isfinite(cold_start).all() and output.finite_rows().all()):
    raise ReleaseError(f"{version}: the cold-start state or its embedding is not finite; the "
                       f"model is broken: retrain it")
  if embedding.shape[1] != retriever.manifest.dimension:
    raise ReleaseError(f"{version}: user embeddings of dimension {embedding.shape[1]}, the "
                       f"index holds {retriever.manifest.dimension}")


class ReleaseManager:
  """Holds the release being served and swaps in the store's current one when it is complete.

  A swap is one reference assignment: a request reads `current` once and uses that release to
  the end, so nothing in flight is dropped and no answer mixes two versions.
  """

  def __init__(self, loader: ReleaseLoader, store_uri: str, store_timeout_s: float = 0.25):
    self.loader, self.store_uri, self.store_timeout_s = loader, store_uri, store_timeout_s
    self.current: Optional[Release] = None
    self.store: Optional[feature_store.StateStore] = None
    self._retired: List[Release] = []
    self.refused: Optional[Refusal] = None
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None
    self.on_swap: Callable[[Release], None] = lambda release: None
    # Called with each new refusal, and with None once the store names the served release again.
    self.on_refuse: Callable[[Optional[Refusal]], None] = lambda refusal: None

  def refresh(self) -> bool:
    """Loads and swaps in the store's current release if it is new and complete; True if so."""
    with self._lock:
      try:
        store = self._store()
        target = store.current()
      except versions.VersionError as exc:
        self._refuse(REFUSED_UNSAFE, f"the store's current version is not a version: {exc}")
        return False
      except feature_store.UNAVAILABLE_ERRORS as exc:
        logging.warning("release: the state store %s is unavailable (%s); keeping %s",
                        feature_store.store.redacted(self.store_uri), exc, self._serving())
        return False
      try:
        if target is None or self._is_current(target):
          self._set_refused(None)  # e.g. a bad pointer rolled back to the release served
          return False
        release = self.loader.load(target, store, self.current)
      except UnsafeRelease as exc:
        self._refuse(REFUSED_UNSAFE, str(exc))
        return False
      except (ReleaseError, IndexDirError, *feature_store.UNAVAILABLE_ERRORS) as exc:
        message = str(exc)
        self._refuse(REFUSED_INCOMPLETE, message if message.startswith(str(target))
                     else f"{target}: {message}")
        return False
      self._swap(release)
      return True

  def _refuse(self, reason: str, message: str) -> None:
    """Keeps the current release; logs and reports each new refusal once."""
    refusal = Refusal(reason, message)
    if refusal != self.refused:
      log = logging.error if reason == REFUSED_UNSAFE else logging.warning
      log("release: not loading (%s): %s; keeping %s", reason, message, self._serving())
      self._set_refused(refusal)

  def _set_refused(self, refusal: Optional[Refusal]) -> None:
    if refusal != self.refused:
      self.refused = refusal
      self.on_refuse(refusal)

  def _store(self) -> feature_store.StateStore:
    if self.store is None:
      self.store = feature_store.open_store(self.store_uri, self.store_timeout_s)
    return self.store

  def _is_current(self, target: StatesVersion) -> bool:
    if self.current is None or self.current.states_version != target:
      return False
    # The daily job may republish the index of the same version (the catalog changed).
    built_at = self.loader.index_built_at(target)
    return built_at is None or built_at == self.current.retriever.manifest.built_at

  def _serving(self) -> str:
    return str(self.current.states_version) if self.current else "no release"

  def _swap(self, release: Release) -> None:
    previous, self.current = self.current, release
    self._set_refused(None)
    # In-flight requests may still use the previous release's remote head: close it one swap
    # later, never under them.
    for old in self._retired:
      if old.remote_head and old.remote_head is not release.remote_head:
        old.remote_head.close()
    self._retired = [previous] if previous else []
    progress.report("release: serving model %s, index %s (%d items), states %s, head %s",
                    release.model_version, release.index_version,
                    release.retriever.manifest.items, release.states_version,
                    release.remote_head.name if release.remote_head else "in-process")
    self.on_swap(release)

  def start(self, interval_s: float = 30.0) -> None:
    """Checks for a new release every `interval_s` in a background thread."""
    def loop():
      while not self._stop.wait(interval_s):
        try:
          self.refresh()
        except Exception:  # pylint: disable=broad-except
          logging.exception("release: refresh failed; keeping %s", self._serving())
    self._thread = threading.Thread(target=loop, name="ctxrec-release", daemon=True)
    self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread:
      self._thread.join()
