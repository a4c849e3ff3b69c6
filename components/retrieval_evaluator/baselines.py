"""Non-learned baselines a contextual retriever must beat: popularity, popularity by context,
the item being viewed first (last_viewed), and the session's viewed items first (session_views),
the strongest heuristic.

All rank the whole catalog with the ranking rule of `metrics.ranks_from_scores` (higher score
first, ties to the earlier catalog index), so their ranks compare exactly with the models'.

Context is given as a dense [n, C] array: row e holds the weight of each category c (by the
index used in `item_primary`) in example e's session, 0 where it lacks it; an all-zero row means
the example has no context. context_popularity and last_viewed read the most recent view alone
(the weight is c's confidence in it); session_views weighs view j (0 = most recent) by
recency_weight(j) = 2^-j and sums, w(c) = sum_j 2^-j conf_j(c): the model's prior starts with
the same decay, ln 2 per view. Items whose primary category is -1 match nothing.

Pinned items ([n, P] catalog rows, -1 for none) go first, in order, as the service returns
them (request_context.pinned_items); `pinned_first` applies that rule to any ranking.
"""
from typing import List, Optional, Sequence

import numpy as np

from ctxrec.components.retrieval_evaluator.metrics import (ranks_from_scores, ranks_of_positions,
                                                           rows_per_block)

_TIE_BREAK = 1e-6  # popularity's weight inside a context score: orders items of equal weight
RECENCY_DECAY = 0.5  # session_views' weight of a view per view more recent: 2^-j (ln 2 per view)


def recency_weight(position: int) -> float:
  """session_views' weight of view `position` (0 = most recent): RECENCY_DECAY ** position."""
  return RECENCY_DECAY ** position


def popularity_ranks(counts: np.ndarray, label_positions: np.ndarray) -> np.ndarray:
  """Label ranks when every example gets the catalog ordered by train conversion count."""
  counts = np.asarray(counts, dtype=np.float64).reshape(-1)
  positions = np.asarray(label_positions, dtype=np.int64).reshape(-1)
  if np.any(positions >= counts.size):
    raise ValueError(f"label positions must be < N = {counts.size}")
  order = np.argsort(-counts, kind="stable")  # stable: equal counts keep catalog order
  rank_of = np.empty(counts.size, dtype=np.float64)
  rank_of[order] = np.arange(1, counts.size + 1)
  ranks = np.full(positions.size, np.inf)
  known = positions >= 0
  ranks[known] = rank_of[positions[known]]
  return ranks


def context_popularity_ranks(counts: np.ndarray, item_primary: np.ndarray,
                             context_weights: np.ndarray, label_positions: np.ndarray,
                             batch_size: Optional[int] = None) -> np.ndarray:
  """Label ranks of "related items": the context's categories first by popularity, then the rest.

  score(i) = w_ctx(primary(i)) * (counts[i] + 1) + counts[i] / (max(counts) + 1) * 1e-6, with
  w_ctx = context_weights[e] ([n, C], see the module docstring). Examples without context get
  plain popularity, which is what this score reduces to then.
  """
  return context_ranks(counts, item_primary, context_weights, [label_positions], batch_size)[0]


def session_views_ranks(counts: np.ndarray, item_primary: np.ndarray,
                        session_weights: np.ndarray, pinned_positions: np.ndarray,
                        label_positions: np.ndarray,
                        batch_size: Optional[int] = None) -> np.ndarray:
  """Label ranks of "the session's viewed items, most recent first, then their categories by
  recency-weighted popularity, then the rest": context_popularity's score with session weights
  (module docstring), the pinned views ([n, P] catalog rows, -1 for none) moved first."""
  labels, pins = context_ranks(counts, item_primary, session_weights,
                               [label_positions, pinned_positions], batch_size)
  return pinned_first(labels, pins, pinned_positions, label_positions)


def last_viewed_ranks(counts: np.ndarray, item_primary: np.ndarray, context_weights: np.ndarray,
                      context_positions: np.ndarray, label_positions: np.ndarray,
                      batch_size: Optional[int] = None) -> np.ndarray:
  """Label ranks of "the item being viewed, then its categories by popularity, then the rest":
  context_popularity with the most recent view's item (catalog row, -1 for none) moved first."""
  pinned = np.asarray(context_positions, dtype=np.int64).reshape(-1, 1)
  return session_views_ranks(counts, item_primary, context_weights, pinned, label_positions,
                             batch_size)


def pinned_first(label_ranks: np.ndarray, pinned_ranks: np.ndarray,
                 pinned_positions: np.ndarray, label_positions: np.ndarray) -> np.ndarray:
  """Label ranks once each row's pinned items ([n, P] catalog rows, -1 for none; their ranks in
  the same ranking [n, P]) go first, in order, a repeat once (request_context.pinned_items): a
  pinned label ranks at its place among them, any other label one lower per distinct pinned item
  ranked after it; a label outside the catalog (-1) stays at inf."""
  labels = np.asarray(label_positions, dtype=np.int64).reshape(-1)
  pins = np.asarray(pinned_positions, dtype=np.int64)
  pins = pins[:, None] if pins.ndim == 1 else pins
  ranks = np.asarray(pinned_ranks, dtype=np.float64)
  if pins.shape[0] != labels.size or ranks.shape != pins.shape:
    raise ValueError(f"need [n, P] pinned positions and ranks with n = {labels.size} labels, "
                     f"got shapes {pins.shape} and {ranks.shape}")
  earlier = np.tri(pins.shape[1], k=-1, dtype=bool)  # [j, k]: slot k comes before slot j
  repeat = ((pins[:, :, None] == pins[:, None, :]) & earlier[None]).any(axis=2)
  distinct = (pins >= 0) & ~repeat
  base = np.asarray(label_ranks, dtype=np.float64).reshape(-1)
  out = base + np.count_nonzero(distinct & (ranks > base[:, None]), axis=1)
  rows, slots = np.nonzero(distinct & (pins == labels[:, None]) & (labels[:, None] >= 0))
  out[rows] = np.cumsum(distinct, axis=1)[rows, slots]
  return out


def context_ranks(counts: np.ndarray, item_primary: np.ndarray, context_weights: np.ndarray,
                  position_sets: Sequence[np.ndarray],
                  batch_size: Optional[int] = None) -> List[np.ndarray]:
  """Ranks under context_popularity of each array of catalog rows in `position_sets` ([n] or
  [n, P] per example, same shape out), from one scoring of the catalog: labels and pinned items
  share it."""
  counts = np.asarray(counts, dtype=np.float64).reshape(-1)
  primary = np.asarray(item_primary, dtype=np.int64).reshape(-1)
  weights = np.asarray(context_weights, dtype=np.float64)
  sets = [np.asarray(p, dtype=np.int64) for p in position_sets]
  sets = [p if p.ndim in (1, 2) else p.reshape(-1) for p in sets]
  if (primary.size != counts.size or weights.ndim != 2
      or any(p.shape[0] != weights.shape[0] for p in sets)):
    raise ValueError(f"need one primary category per item ({counts.size} items, got "
                     f"{primary.size}) and context_weights [n, C] with n = {sets[0].shape[0]} "
                     f"labels, got shape {weights.shape}")
  if np.any(primary >= weights.shape[1]):
    raise ValueError(f"item_primary must be < C = {weights.shape[1]} (or -1 for none)")
  batch_size = batch_size or rows_per_block(counts.size)
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  ranks = [popularity_ranks(counts, p.reshape(-1)).reshape(p.shape) for p in sets]
  with_context = np.flatnonzero(weights.any(axis=1))
  if with_context.size == 0 or counts.size == 0:
    return ranks
  columns = np.where(primary < 0, weights.shape[1], primary)  # -1: an appended zero column
  tie_break = counts / (counts.max() + 1.0) * _TIE_BREAK
  for start in range(0, with_context.size, batch_size):
    rows = with_context[start:start + batch_size]
    padded = np.concatenate([weights[rows], np.zeros((rows.size, 1))], axis=1)
    scores = padded[:, columns] * (counts + 1.0) + tie_break
    for out, positions in zip(ranks, sets):
      out[rows] = (ranks_from_scores(scores, positions[rows]) if positions.ndim == 1
                   else ranks_of_positions(scores, positions[rows]))
  return ranks
