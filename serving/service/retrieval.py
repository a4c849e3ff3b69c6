"""The request path: state (feature store) -> context head -> ANN, for a batch of requests of
one release, with every fallback named in the answer."""
import dataclasses
import logging
import time
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from ctxrec.components import request_context
from ctxrec.components.request_context import Context, View
from ctxrec.serving import feature_store
from ctxrec.serving.head.circuit_breaker import CircuitBreaker
from ctxrec.serving.head.head import HeadError, HeadOutput
from ctxrec.serving.service import fallbacks as fb
from ctxrec.serving.service.release import Release, ReleaseManager
from ctxrec.serving.service.schemas import ContextIn, RetrieveRequest, ViewIn
from ctxrec.transform import features as f

STAGES = ("state", "head", "ann", "total")


class RequestError(ValueError):
  """A request the service cannot answer as asked (a 4xx): names the field."""

  def __init__(self, field: str, message: str, status: int = 422):
    super().__init__(message)
    self.field, self.status = field, status


class NotReady(RuntimeError):
  """No complete release is loaded yet (a 503)."""


@dataclasses.dataclass
class _Batch:
  """Per-request working state of one batch."""
  requests: Sequence[RetrieveRequest]
  fallbacks: List[List[str]]
  seconds: Dict[str, float] = dataclasses.field(default_factory=dict)

  def flag(self, row: int, name: str) -> None:
    if name not in self.fallbacks[row]:
      self.fallbacks[row].append(name)

  def flag_all(self, name: str) -> None:
    for row in range(len(self.requests)):
      self.flag(row, name)


def resolve_context(given: Optional[ContextIn], catalog: Mapping) -> Tuple[Context, bool]:
  """(the request's session, whether one of its items was unknown): each view's item resolves
  through the catalog exactly as eval requests do; an unknown item keeps its given categories,
  if any, else its view is dropped."""
  if given is None:
    return request_context.NO_CONTEXT, False
  session, views, unknown = given.session(), [], False
  for view, seconds_ago in zip(session, _ages(session)):
    resolved, missing = _resolve_view(view, catalog, seconds_ago)
    unknown |= missing
    if resolved is not None:
      views.append(resolved)
  return Context(tuple(views)), unknown


def _ages(views: Sequence[ViewIn]) -> List[int]:
  """Each view's seconds_ago; one left out is as old as the view before it (0 for the first),
  so the ages stay most recent first."""
  out, age = [], 0
  for view in views:
    age = age if view.seconds_ago is None else view.seconds_ago
    out.append(age)
  return out


def _resolve_view(given: ViewIn, catalog: Mapping,
                  seconds_ago: int) -> Tuple[Optional[View], bool]:
  """(the view, or None; whether its item was unknown)."""
  if given.item_id is not None:
    known = request_context.view_of_item(given.item_id, catalog, seconds_ago)
    if known is not None:
      return known, False
  if given.categories is None:
    return None, True
  confidences = given.confidences or [1.0] * len(given.categories)
  view = request_context.view_of_categories(given.categories, confidences, seconds_ago)
  return view, given.item_id is not None


class RetrievalService:
  """Answers batches of requests from the manager's current release."""

  def __init__(self, manager: ReleaseManager, breaker: Optional[CircuitBreaker] = None):
    self.manager = manager
    self.breaker = breaker or CircuitBreaker()

  def release(self) -> Release:
    release = self.manager.current
    if release is None:
      raise NotReady("no complete release is loaded yet (model, index and states of one model "
                     "version); see /readyz and the service log")
    return release

  def retrieve(self, requests: Sequence[RetrieveRequest]) -> List[dict]:
    """One answer per request (a dict in the RetrieveResponse schema), all from one release."""
    started = time.perf_counter()
    release = self.release()
    _check(requests, release)
    batch = _Batch(requests, [[] for _ in requests])
    contexts = self._contexts(batch, release)
    states = self._timed(batch, "state", self._states, batch, release)
    users = self._timed(batch, "head", self._embed, batch, release, states, contexts)
    ids, scores, pins = self._timed(batch, "ann", self._search, batch, release, users, contexts)
    batch.seconds["total"] = time.perf_counter() - started
    timings = {stage: round(batch.seconds[stage] * 1000, 3) for stage in STAGES}
    return [{"items": [{"item_id": i, "score": s, "pinned": i in pins[row]}
                       for i, s in zip(ids[row], scores[row])],
             "model_version": release.model_version, "index_version": release.index_version,
             "states_version": str(release.states_version), "fallbacks": batch.fallbacks[row],
             "timings_ms": timings} for row in range(len(requests))]

  @staticmethod
  def _timed(batch: _Batch, stage: str, function, *args):
    started = time.perf_counter()
    result = function(*args)
    batch.seconds[stage] = time.perf_counter() - started
    return result

  @staticmethod
  def _contexts(batch: _Batch, release: Release) -> List[Context]:
    contexts = []
    for row, request in enumerate(batch.requests):
      context, unknown = resolve_context(request.context, release.retriever.catalog)
      if unknown:
        batch.flag(row, fb.UNKNOWN_CONTEXT_ITEM)
      contexts.append(context)
    return contexts

  @staticmethod
  def _states(batch: _Batch, release: Release) -> np.ndarray:
    states = np.repeat(release.cold_start[np.newaxis], len(batch.requests), axis=0)
    try:
      found = release.store.get_many([r.user_id for r in batch.requests],
                                              release.states_version)
    except feature_store.UNAVAILABLE_ERRORS as exc:
      logging.warning("state store unavailable (%s): serving the cold-start state", exc)
      batch.flag_all(fb.STATE_STORE_UNAVAILABLE)
      return states
    for row, state in enumerate(found):
      if state is None:
        batch.flag(row, fb.UNKNOWN_USER)
      else:
        states[row] = state
    return states

  def _embed(self, batch: _Batch, release: Release, states: np.ndarray,
             contexts: List[Context]) -> HeadOutput:
    """User embeddings and boosts; a row the head makes NaN or infinite never reaches the
    search."""
    users = self._head(batch, release, states, contexts)
    bad = ~users.finite_rows()
    if not bad.any():
      return users
    rows = np.flatnonzero(bad)
    logging.warning("context_head gave non-finite embeddings for %d of %d requests: embedding "
                    "them without context or demographics", len(rows), len(bad))
    for row in rows:
      batch.flag(int(row), fb.NON_FINITE_EMBEDDING)
    for retry_states in (states[rows], np.repeat(release.cold_start[np.newaxis], len(rows), 0)):
      retried = release.local_head.embed(release.signature.inputs(
          retry_states, [request_context.NO_CONTEXT] * len(rows), [{}] * len(rows)))
      finite = retried.finite_rows()
      users = users.replace_rows(rows[finite], HeadOutput(
          retried.embeddings[finite], retried.boost_keys[finite], retried.boost_weights[finite]))
      rows = rows[~finite]
      if not len(rows):
        return users
    raise RuntimeError(f"model {release.model_version}: context_head is not finite even on the "
                       f"cold-start state without context")

  def _head(self, batch: _Batch, release: Release, states: np.ndarray,
            contexts: List[Context]) -> HeadOutput:
    inputs = release.signature.inputs(states, contexts, [_demographics(r) for r in batch.requests])
    remote = release.remote_head
    if remote is not None:
      if self.breaker.allow():
        try:
          users = remote.embed(inputs)
          self.breaker.succeeded()
          return users
        except HeadError as exc:
          self.breaker.failed()
          logging.warning("TF Serving failed (%s): the in-process head answers", exc)
          batch.flag_all(fb.TF_SERVING_UNAVAILABLE)
      else:
        batch.flag_all(fb.TF_SERVING_CIRCUIT_OPEN)
    return release.local_head.embed(inputs)

  @staticmethod
  def _search(batch: _Batch, release: Release, users: HeadOutput, contexts: List[Context]
              ) -> Tuple[List[List[str]], List[List[float]], List[frozenset]]:
    """Ids and scores best first (dot product plus boosts), the session's items pinned first
    (request_context.pinned_items), and each answer's pinned items."""
    pins = [request_context.pinned_items(context, set(request.exclude_item_ids),
                                         release.signature.session_views)
            for request, context in zip(batch.requests, contexts)]
    items = release.retriever.manifest.items
    # Enough for every request's k after its exclusions and its pinned items are taken out.
    wanted = min(max(r.k + len(r.exclude_item_ids) + len(p) for r, p in zip(batch.requests, pins)),
                 items)
    found, scores = release.retriever.search(users.embeddings, wanted, users.boost_keys,
                                             users.boost_weights)
    out_ids, out_scores = [], []
    for row, request in enumerate(batch.requests):
      ids, values = _pinned_first(found[row], scores[row], pins[row],
                                  set(request.exclude_item_ids))
      if len(ids) < request.k:
        batch.flag(row, fb.SHORT_ANSWER)
      out_ids.append(ids[:request.k])
      out_scores.append(values[:request.k])
    return out_ids, out_scores, [frozenset(p) for p in pins]


def _pinned_first(found: np.ndarray, scores: np.ndarray, pins: Sequence[str],
                  excluded: Set[str]) -> Tuple[List[str], List[float]]:
  """One answer: the pinned items, at the search's top score (so scores never increase), then
  the ranking without them and the excluded items."""
  taken = excluded | set(pins)
  keep = [c for c, item in enumerate(found) if item not in taken]
  top = float(scores[0]) if len(scores) else 0.0
  return list(pins) + list(found[keep]), [top] * len(pins) + scores[keep].tolist()


def _demographics(request: RetrieveRequest) -> Dict[str, str]:
  return {f.demographic_feature(column): value
          for column, value in (request.demographics or {}).items()}


def _check(requests: Sequence[RetrieveRequest], release: Release) -> None:
  items = release.retriever.manifest.items
  for request in requests:
    if request.model_version is not None and request.model_version != release.model_version:
      raise RequestError("model_version", f"model version {request.model_version} is not "
                         f"served; this service serves {release.model_version}", status=409)
    if request.k > items:
      raise RequestError("k", f"k={request.k} but the catalog has {items} items")
