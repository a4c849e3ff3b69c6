"""Retriever: a published index, paired with one model version, answering top-k queries."""
import os
from typing import Optional, Tuple

import numpy as np

from ctxrec.serving.index import category_index
from ctxrec.serving.index import index_dir
from ctxrec.serving.index import scann_api
from ctxrec.serving.index import searcher_config as sc
from ctxrec.serving.index.manifest import IndexDirError


class Retriever:
  """Loads INDEX_ROOT/<version>/ and searches it with an explicit number of threads.

  Given `model_version`, an index embedded by another model version is refused: its vectors
  are not comparable with that model's user embeddings.
  """

  def __init__(self, directory: str, model_version: Optional[str] = None, num_threads: int = 1):
    if num_threads < 1:
      raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    self.manifest = index_dir.verify(directory)
    if model_version is not None and self.manifest.model_version != str(model_version):
      raise IndexDirError(
          f"{directory}: the index was embedded by model version "
          f"{self.manifest.model_version}, not {model_version}; user and item embeddings of "
          f"different versions are not comparable: load the index of model {model_version}")
    local = index_dir.local_copy(directory)
    self.catalog = index_dir.read_catalog(local)
    self.item_ids = self.catalog.item_ids
    self.embeddings = index_dir.read_embeddings(local)
    self.categories = category_index.CategoryIndex(self.catalog.primary_categories())
    if len(self.item_ids) != self.manifest.items or self.embeddings.shape != (
        self.manifest.items, self.manifest.dimension):
      raise IndexDirError(f"{directory}: {len(self.item_ids)} item ids for "
                          f"{self.manifest.items} items; rebuild the index")
    try:
      self._searcher = scann_api.load(os.path.join(local, index_dir.SCANN_DIR))
    except (RuntimeError, ValueError) as exc:
      raise IndexDirError(f"{directory}: ScaNN cannot load the searcher ({exc}); rebuild the "
                          f"index") from exc
    self._searcher.set_num_threads(num_threads)
    self.num_threads = num_threads
    self.settings = sc.SearchSettings(**self.manifest.settings)

  def search(self, queries: np.ndarray, k: int, boost_keys: Optional[np.ndarray] = None,
             boost_weights: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(item ids, scores), best first: shape [k] for one query [d], [n, k] for queries [n, d].

    With boosts ([n, S] category keys and weights, the context head's), the score is the dot
    product plus the boosts of each item's primary category (category_index.py), the top k
    exact over the searcher's candidates and the boosted categories' items."""
    queries = np.asarray(queries, dtype=np.float32)
    single = queries.ndim == 1
    queries = queries[np.newaxis] if single else queries
    if queries.ndim != 2 or queries.shape[1] != self.manifest.dimension:
      raise ValueError(f"queries of shape {queries.shape} do not match the index's dimension "
                       f"{self.manifest.dimension}")
    if not 1 <= k <= self.manifest.items:
      raise ValueError(f"k={k}: ask for 1 to {self.manifest.items} items (the catalog's size)")
    rows, scores = sc.search(self._searcher, queries, k, self.settings,
                             parallel=self.num_threads > 1)
    rows, scores = np.asarray(rows, dtype=np.int64), np.asarray(scores, dtype=np.float32)
    if boost_keys is not None and np.size(boost_keys) and np.any(boost_weights):
      rows, scores = self._boosted(queries, rows, k, np.atleast_2d(boost_keys),
                                   np.atleast_2d(boost_weights))
    ids = self.item_ids[rows]
    return (ids[0], scores[0]) if single else (ids, scores)

  def _boosted(self, queries: np.ndarray, candidates: np.ndarray, k: int, keys: np.ndarray,
               weights: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    rows = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    for i, query in enumerate(queries):
      rows[i], scores[i] = category_index.boosted_top_k(
          query, candidates[i], self.embeddings, self.categories, keys[i], weights[i], k)
    return rows, scores
