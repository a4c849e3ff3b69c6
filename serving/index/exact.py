"""Exact dot-product top-k over a whole catalog: the ground truth an index's recall is measured
against."""
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


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
  """Mean share of each query's true top-k that the first k found rows contain."""
  hits = [len(np.intersect1d(f[:k], t[:k], assume_unique=True)) for f, t in zip(found, truth)]
  return float(np.mean(hits)) / min(k, truth.shape[1])
