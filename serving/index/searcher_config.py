"""Which ScaNN searcher a catalog gets, following ScaNN's own guidance by catalog size, and how
to build it with the pybind API.

  fewer than `brute_force_below` items (20k)  exact brute force
  fewer than `tree_above` items (100k)        asymmetric hashing (AH) + exact reordering
  more                                        a tree of ~sqrt(n) leaves, AH with 2 dimensions
                                              per block, exact reordering

Search settings (leaves to search, reorder count) are tuned after the build (tuning.py).
"""
import dataclasses
import math
from typing import Any, Dict, Optional

import numpy as np

from ctxrec.serving.index import scann_api

BRUTE_FORCE = "brute_force"
AH = "ah"
TREE_AH = "tree_ah"
KINDS = (BRUTE_FORCE, AH, TREE_AH)


@dataclasses.dataclass(frozen=True)
class SearcherConfig:
  """How the searcher is built; search-time settings live in SearchSettings."""
  kind: str = BRUTE_FORCE
  num_leaves: int = 0  # tree only
  dims_per_block: int = 2  # AH
  anisotropic_threshold: float = 0.2  # AH's anisotropic quantization (dot product)
  training_sample_size: int = 250_000  # tree and AH training sample

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"searcher kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
    if self.kind == TREE_AH and self.num_leaves < 2:
      raise ValueError(f"a tree needs num_leaves >= 2, got {self.num_leaves}")

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SearchSettings:
  """Per-query settings: leaves searched (tree) and candidates re-scored exactly (AH)."""
  leaves_to_search: int = 0
  reorder: int = 0


def default_num_leaves(items: int) -> int:
  """About sqrt(n) leaves, ScaNN's rule of thumb for a tree."""
  return max(2, int(round(math.sqrt(items))))


def config_for_catalog(items: int, brute_force_below: int = 20_000,
                       tree_above: int = 100_000) -> SearcherConfig:
  """ScaNN's guidance for a catalog of `items` vectors."""
  if items < brute_force_below:
    return SearcherConfig(kind=BRUTE_FORCE)
  if items < tree_above:
    return SearcherConfig(kind=AH)
  return SearcherConfig(kind=TREE_AH, num_leaves=default_num_leaves(items))


def build(embeddings: np.ndarray, config: SearcherConfig, num_neighbors: int = 100,
          training_threads: int = 0) -> "scann_api.Searcher":
  """Trains and builds a dot-product searcher over `embeddings` (rows are catalog items)."""
  embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
  builder = scann_api.builder(embeddings, num_neighbors, "dot_product")
  builder.set_n_training_threads(training_threads)
  sample = min(config.training_sample_size, len(embeddings))
  if config.kind == BRUTE_FORCE:
    return builder.score_brute_force().build()
  if config.kind == TREE_AH:
    builder = builder.tree(num_leaves=config.num_leaves,
                           num_leaves_to_search=max(1, config.num_leaves // 20),
                           training_sample_size=sample)
  return (builder
          .score_ah(config.dims_per_block, anisotropic_quantization_threshold=(
              config.anisotropic_threshold), training_sample_size=sample)
          .reorder(num_neighbors)
          .build())


def _search_args(settings: Optional[SearchSettings], k: int):
  """ScaNN's (pre_reorder_num_neighbors, leaves_to_search); None keeps the built default."""
  settings = settings or SearchSettings()
  return (max(settings.reorder, k) if settings.reorder else None,
          settings.leaves_to_search or None)


def search_one(searcher, query: np.ndarray, k: int, settings: Optional[SearchSettings] = None):
  """(row indices, scores) of one query's top k."""
  reorder, leaves = _search_args(settings, k)
  return searcher.search(query, k, reorder, leaves)


def search(searcher, queries: np.ndarray, k: int, settings: Optional[SearchSettings] = None,
           parallel: bool = False):
  """(row indices [n, k], scores [n, k]) of the top k of each query."""
  reorder, leaves = _search_args(settings, k)
  if parallel:
    return searcher.search_batched_parallel(queries, k, reorder, leaves)
  return searcher.search_batched(queries, k, reorder, leaves)
