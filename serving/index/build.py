"""Builds a catalog index: the searcher its size calls for, settings tuned against exact search
on real queries, the recall gate, and the directory with its manifest."""
import dataclasses
import logging
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ctxrec import progress
from ctxrec.serving.index import index_dir
from ctxrec.serving.index import searcher_config as sc
from ctxrec.serving.index import tuning
from ctxrec.serving.index.exact import exact_truth
from ctxrec.serving.index.manifest import IndexManifest

LATENCY_QUERIES = 200


@dataclasses.dataclass(frozen=True)
class BuildSpec:
  """What to build: the searcher (None: by catalog size), fixed settings (None: tune), gate."""
  recall_threshold: float = 0.95
  searcher: Optional[sc.SearcherConfig] = None
  settings: Optional[sc.SearchSettings] = None
  brute_force_below: int = 20_000
  tree_above: int = 100_000

  def __post_init__(self):
    if not 0.0 < self.recall_threshold <= 1.0:
      raise ValueError(f"recall_threshold must be in (0, 1], got {self.recall_threshold}")


@dataclasses.dataclass(frozen=True)
class Catalog:
  """Embedded catalog items of one model version."""
  item_ids: Sequence[str]
  embeddings: np.ndarray  # [items, dimension] float32
  model_version: str
  fingerprint: str
  categories: Sequence[Sequence[str]] = ()  # per item, primary first; () when unknown
  confidences: Sequence[Sequence[float]] = ()

  def items_table(self):
    """The catalog's items in row order, for the index directory."""
    empty = [[]] * len(self.item_ids)
    return index_dir.items_table(self.item_ids, self.categories or empty,
                                 self.confidences or empty)


def build_index(catalog: Catalog, queries: np.ndarray, query_source: str, spec: BuildSpec,
                directory: str) -> Tuple[IndexManifest, List[tuning.Measurement]]:
  """Builds, tunes and measures an index into the new local `directory`; returns its manifest
  (blessed when recall@100 reaches the threshold) and every setting measured."""
  items, dimension = catalog.embeddings.shape
  if items == 0:
    raise ValueError("the catalog is empty: there is nothing to index")
  finite = np.isfinite(catalog.embeddings).all(axis=1)
  if not finite.all():
    raise ValueError(f"model {catalog.model_version}: embed_items gave NaN or infinite "
                     f"embeddings for {int((~finite).sum())} of {items} items (first: "
                     f"{catalog.item_ids[int(np.argmin(finite))]}); the model is broken: "
                     f"retrain it")
  config = spec.searcher or sc.config_for_catalog(items, spec.brute_force_below, spec.tree_above)
  progress.report("IndexBuilder: building a %s searcher over %d items", config.kind, items)
  started = time.perf_counter()
  searcher = sc.build(catalog.embeddings, config)
  build_seconds = time.perf_counter() - started
  truth = exact_truth(queries, catalog.embeddings, max(tuning.RECALL_KS))
  measured = tuning.tune(searcher, config, truth, spec.recall_threshold, spec.settings)
  chosen = tuning.best(measured, spec.recall_threshold)
  blessed = chosen.recall[100] >= spec.recall_threshold
  logging.info("IndexBuilder: %s built in %.1fs; %s -> recall@10 %.4f, recall@100 %.4f (%s)",
               config.kind, build_seconds, chosen.settings, chosen.recall[10], chosen.recall[100],
               "blessed" if blessed else f"below {spec.recall_threshold}")
  manifest = IndexManifest(
      model_version=catalog.model_version, dimension=dimension, items=items,
      catalog_fingerprint=catalog.fingerprint, searcher=config.to_dict(),
      settings=dataclasses.asdict(chosen.settings),
      recall={f"recall@{k}": v for k, v in chosen.recall.items()},
      threshold=spec.recall_threshold, blessed=blessed,
      latency_ms=tuning.latency_ms(searcher, queries[:LATENCY_QUERIES], max(tuning.RECALL_KS),
                                   chosen.settings),
      ms_per_query_batched=chosen.ms_per_query, queries=len(queries), query_source=query_source,
      built_at=time.time())
  return (index_dir.write(directory, searcher, catalog.items_table(), catalog.embeddings,
                          manifest), measured)
