"""Exact dot-product top-k over a whole catalog: the ground truth an index's recall is measured
against."""
import dataclasses
from typing import Tuple

import numpy as np

_QUERY_CHUNK = 128  # 128 queries x 1M items of float32 scores is 512 MB at a time


def exact_top_k(queries: np.ndarray, items: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
  """(row indices [n, k], scores [n, k]) of the k items with the highest dot product, best first."""
  k = min(k, len(items))
  indices = np.empty((len(queries), k), np.int64)
  scores = np.empty((len(queries), k), np.float32)
  for start in range(0, len(queries), _QUERY_CHUNK):
    chunk = queries[start:start + _QUERY_CHUNK] @ items.T
    top = np.argpartition(-chunk, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(chunk, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    indices[start:start + len(chunk)] = np.take_along_axis(top, order, axis=1)
    scores[start:start + len(chunk)] = np.take_along_axis(top_scores, order, axis=1)
  return indices, scores


@dataclasses.dataclass(frozen=True)
class ExactTruth:
  """The exact top-k of queries over a catalog, kept with both to score any row exactly."""
  queries: np.ndarray  # [n, d]
  items: np.ndarray  # [items, d]
  rows: np.ndarray  # [n, k], best first
  scores: np.ndarray  # [n, k]


def exact_truth(queries: np.ndarray, items: np.ndarray, k: int) -> ExactTruth:
  rows, scores = exact_top_k(queries, items, k)
  return ExactTruth(queries, items, rows, scores)


_TIE_TOLERANCE = 1e-5  # relative: float32 dot products of one pair differ across BLAS paths


def recall_at_k(found: np.ndarray, truth: ExactTruth, k: int) -> float:
  """Mean share of the first k found rows that score at least the k-th exact score.

  Rows tied with the true top-k are as good as the ones exact search happened to list first:
  items known only by their categories share one embedding, so a catalog can hold thousands of
  ties, and counting ids alone would fail a searcher that returns equally scored items.
  """
  k = min(k, truth.rows.shape[1])
  found = np.asarray(found, dtype=np.int64)[:, :k]
  valid = found >= 0
  vectors = truth.items[np.where(valid, found, 0)]
  scores = np.einsum("nd,nkd->nk", truth.queries, vectors)
  kth = truth.scores[:, k - 1:k]
  hits = valid & (scores >= kth - _TIE_TOLERANCE * np.maximum(1.0, np.abs(kth)))
  return float(np.mean(np.minimum(hits.sum(axis=1), k))) / k
