"""Non-learned baselines a contextual retriever must beat: popularity, popularity by context, and
the item being viewed first (last_viewed), the strongest single-item heuristic.

All rank the whole catalog with the ranking rule of `metrics.ranks_from_scores` (higher score
first, ties to the earlier catalog index), so their ranks compare exactly with the models'.

Context is given as a dense [n, C] array: row e holds the confidence of each category c (by the
index used in `item_primary`) in example e's context item, 0 where the context lacks it; an
all-zero row means the example has no context. Items whose primary category is -1 match nothing.
"""
from typing import List, Optional, Sequence

import numpy as np

from ctxrec.components.retrieval_evaluator.metrics import ranks_from_scores, rows_per_block

_TIE_BREAK = 1e-6  # popularity's weight inside a context score: orders items of equal weight


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


def last_viewed_ranks(counts: np.ndarray, item_primary: np.ndarray, context_weights: np.ndarray,
                      context_positions: np.ndarray, label_positions: np.ndarray,
                      batch_size: Optional[int] = None) -> np.ndarray:
  """Label ranks of "the item being viewed, then its categories by popularity, then the rest":
  context_popularity with the context item (catalog row, -1 for none) moved to the front."""
  labels, contexts = context_ranks(counts, item_primary, context_weights,
                                   [label_positions, context_positions], batch_size)
  return viewed_first(labels, contexts, context_positions, label_positions)


def viewed_first(label_ranks: np.ndarray, context_item_ranks: np.ndarray,
                 context_positions: np.ndarray, label_positions: np.ndarray) -> np.ndarray:
  """Label ranks once the context item is moved to rank 1: the label is 1 if it is the context
  item, one lower if the context item was ranked after it, unchanged otherwise."""
  contexts = np.asarray(context_positions, dtype=np.int64).reshape(-1)
  labels = np.asarray(label_positions, dtype=np.int64).reshape(-1)
  if contexts.size != labels.size:
    raise ValueError(f"need one context position per label ({labels.size}), got {contexts.size}")
  viewed = contexts >= 0
  label_ranks = np.asarray(label_ranks, dtype=np.float64)
  ranks = label_ranks + (viewed & (np.asarray(context_item_ranks) > label_ranks))
  ranks[viewed & (contexts == labels)] = 1.0
  return ranks


def context_ranks(counts: np.ndarray, item_primary: np.ndarray, context_weights: np.ndarray,
                  position_sets: Sequence[np.ndarray],
                  batch_size: Optional[int] = None) -> List[np.ndarray]:
  """Ranks under context_popularity of each array of catalog rows in `position_sets` (one row
  per example each), from one scoring of the catalog: labels and context items share it."""
  counts = np.asarray(counts, dtype=np.float64).reshape(-1)
  primary = np.asarray(item_primary, dtype=np.int64).reshape(-1)
  weights = np.asarray(context_weights, dtype=np.float64)
  sets = [np.asarray(p, dtype=np.int64).reshape(-1) for p in position_sets]
  if (primary.size != counts.size or weights.ndim != 2
      or any(p.size != weights.shape[0] for p in sets)):
    raise ValueError(f"need one primary category per item ({counts.size} items, got "
                     f"{primary.size}) and context_weights [n, C] with n = {sets[0].size} "
                     f"labels, got shape {weights.shape}")
  if np.any(primary >= weights.shape[1]):
    raise ValueError(f"item_primary must be < C = {weights.shape[1]} (or -1 for none)")
  batch_size = batch_size or rows_per_block(counts.size)
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  ranks = [popularity_ranks(counts, p) for p in sets]
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
      out[rows] = ranks_from_scores(scores, positions[rows])
  return ranks
