"""The catalog's items by primary category key: the exact half of the score.

A request's boosts (trainer/score_priors.py) add a weight to every item of a few categories; the
searcher only knows the dot product. So the candidates of a query are the searcher's top k by dot
product and every item of its boosted categories, each scored exactly (dot product plus boosts)
from the stored embeddings: the true top k of the whole score is among them, whatever the number
of categories.
"""
from typing import Tuple

import numpy as np

from ctxrec.transform import category_keys


class CategoryIndex:
  """Catalog rows grouped by the category key of their primary category."""

  def __init__(self, primary_categories: np.ndarray):
    names, inverse = np.unique(np.asarray(primary_categories, dtype=str), return_inverse=True)
    self.row_keys = category_keys.keys_of(names)[inverse] if len(names) else np.zeros(0, np.int64)
    self._order = np.argsort(self.row_keys, kind="stable")
    self._sorted = self.row_keys[self._order]

  def rows(self, keys: np.ndarray) -> np.ndarray:
    """Catalog rows whose primary category has one of `keys` (NO_KEY matches nothing)."""
    keys = np.unique(keys[keys != category_keys.NO_KEY])
    starts = np.searchsorted(self._sorted, keys, side="left")
    stops = np.searchsorted(self._sorted, keys, side="right")
    if not len(keys):
      return np.zeros(0, np.int64)
    return np.concatenate([self._order[a:b] for a, b in zip(starts, stops)])

  def boosts(self, rows: np.ndarray, keys: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row's summed boost weight under one request's (keys, weights)."""
    match = self.row_keys[rows][:, np.newaxis] == keys[np.newaxis, :]
    return (match & (keys != category_keys.NO_KEY)[np.newaxis, :]) @ weights.astype(np.float32)


def boosted_top_k(query: np.ndarray, candidates: np.ndarray, embeddings: np.ndarray,
                index: CategoryIndex, keys: np.ndarray, weights: np.ndarray,
                k: int) -> Tuple[np.ndarray, np.ndarray]:
  """(rows, scores) of the top k of `candidates` ∪ the boosted categories' rows, best first,
  by dot product plus boosts; ties go to the lower row, as exact search breaks them."""
  rows = np.unique(np.concatenate([candidates, index.rows(keys)]))
  scores = np.asarray(embeddings[rows], np.float32) @ query + index.boosts(rows, keys, weights)
  best = np.lexsort((rows, -scores))[:k]
  return rows[best], scores[best]
