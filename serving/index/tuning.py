"""Picks a searcher's search settings: the fastest that reaches the recall threshold against
exact search on real queries, and measures what was picked (recall and latency)."""
import dataclasses
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from ctxrec.serving.index import searcher_config as sc
from ctxrec.serving.index.exact import ExactTruth, recall_at_k

RECALL_KS = (10, 100)
# Up to every leaf and 3200 re-scored candidates: queries far from the items' clusters (e.g.
# no-context users, whose top items spread over most leaves) pass only there, still ~25x
# faster than exact search on 1M items. Each ladder stops at its first passing rung.
_LEAF_FRACTIONS = (0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.18, 0.25, 0.35, 0.5, 0.7, 1.0)
_REORDERS = (100, 200, 400, 800, 1600, 3200)


@dataclasses.dataclass(frozen=True)
class Measurement:
  """Recall@{10,100} and single-thread batched search time per query of one setting."""
  settings: sc.SearchSettings
  recall: Dict[int, float]
  ms_per_query: float

  def to_dict(self) -> dict:
    return {"settings": dataclasses.asdict(self.settings),
            "recall": {f"recall@{k}": v for k, v in self.recall.items()},
            "ms_per_query": self.ms_per_query}


def candidates(config: sc.SearcherConfig) -> List[List[sc.SearchSettings]]:
  """Settings to try, as ladders of increasing cost (a ladder stops at the first that passes)."""
  if config.kind == sc.BRUTE_FORCE:
    return [[sc.SearchSettings()]]
  if config.kind == sc.AH:
    return [[sc.SearchSettings(reorder=r) for r in _REORDERS]]
  leaves = sorted({max(1, int(round(f * config.num_leaves))) for f in _LEAF_FRACTIONS})
  return [[sc.SearchSettings(leaves_to_search=n, reorder=r) for n in leaves] for r in _REORDERS]


def measure(searcher, truth: ExactTruth, settings: sc.SearchSettings) -> Measurement:
  k = max(RECALL_KS)
  started = time.perf_counter()
  found, _ = sc.search(searcher, truth.queries, k, settings)
  seconds = time.perf_counter() - started
  found = np.asarray(found)
  return Measurement(settings, {r: recall_at_k(found, truth, r) for r in RECALL_KS},
                     1e3 * seconds / len(truth.queries))


def tune(searcher, config: sc.SearcherConfig, truth: ExactTruth, threshold: float,
         fixed: Optional[sc.SearchSettings] = None) -> List[Measurement]:
  """Measures the candidate settings (or only `fixed`); the fastest passing one is `best`."""
  if fixed is not None:
    return [measure(searcher, truth, fixed)]
  measured = []
  for ladder in candidates(config):
    for settings in ladder:
      measured.append(measure(searcher, truth, settings))
      if measured[-1].recall[100] >= threshold:
        break
  return measured


def best(measured: Sequence[Measurement], threshold: float) -> Measurement:
  """The fastest measurement that reaches the threshold, else the one with the highest recall."""
  passing = [m for m in measured if m.recall[100] >= threshold]
  if passing:
    return min(passing, key=lambda m: m.ms_per_query)
  return max(measured, key=lambda m: (m.recall[100], -m.ms_per_query))


def latency_ms(searcher, queries: np.ndarray, k: int,
               settings: sc.SearchSettings) -> Dict[str, float]:
  """Single-query latency p50/p99 (one thread), as a request would see it."""
  times = []
  for query in queries:
    started = time.perf_counter()
    sc.search_one(searcher, query, k, settings)
    times.append(time.perf_counter() - started)
  p50, p99 = np.percentile(np.array(times) * 1e3, [50, 99])
  return {"p50": float(p50), "p99": float(p99)}
