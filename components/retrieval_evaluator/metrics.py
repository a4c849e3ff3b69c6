"""Retrieval metrics from each label's exact rank in the whole catalog, with bootstrap intervals.

Every eval example has one relevant item, its label, so the label's 1-based rank among all N
catalog items gives every metric:

- recall@K = mean(rank <= K);
- ndcg@K = mean(1 / log2(rank + 1) if rank <= K else 0): with one relevant item IDCG is 1;
- mrr = mean(1 / rank if rank <= MAX_K else 0): MRR@100, so that methods ranking the whole
  catalog and oracles that return only a top-100 list are measured alike.

A label outside the catalog has rank inf and counts as a miss everywhere.
"""
from typing import Dict, Tuple

import numpy as np

# ---- Methods and modes, named once for the evaluator, its report and the tools. ----
CONTEXTUAL = "contextual"
HISTORY_ONLY = "history_only"
POPULARITY = "popularity"
CONTEXT_POPULARITY = "context_popularity"
ORACLE_CONTEXTUAL = "oracle_contextual"  # same names as ctxrec.synthetic.oracle.ORACLES
ORACLE_HISTORY = "oracle_history"
METHODS = (CONTEXTUAL, HISTORY_ONLY, POPULARITY, CONTEXT_POPULARITY, ORACLE_CONTEXTUAL,
           ORACLE_HISTORY)
MODEL_METHODS = (CONTEXTUAL, HISTORY_ONLY)  # scored by a trained two-tower model
BASELINE_METHODS = (HISTORY_ONLY, POPULARITY, CONTEXT_POPULARITY)  # what contextual must beat
ORACLE_METHODS = (ORACLE_CONTEXTUAL, ORACLE_HISTORY)  # synthetic data only (ground truth)

REAL_CONTEXT = "real_context"  # the eval example's logged request context
NO_CONTEXT = "no_context"  # the context removed, as for a request without one
MODES = (REAL_CONTEXT, NO_CONTEXT)

# ---- Metrics. ----
RECALL_KS = (10, 20, 50, 100)
NDCG_KS = (10, 100)
MAX_K = 100
MRR = "mrr"
COUNT = "n"
METRIC_NAMES = (tuple(f"recall@{k}" for k in RECALL_KS) + tuple(f"ndcg@{k}" for k in NDCG_KS)
                + (MRR,))

_BOOTSTRAP_BUDGET = 1 << 23  # float64 elements per resampled block (64 MB)


_SCORE_BUDGET = 1 << 25  # score elements per block of rows (a 1M-item catalog: 33 rows)


def rows_per_block(items: int, budget: int = _SCORE_BUDGET) -> int:
  """Rows of [rows, items] scores to rank at once, so memory stays flat as the catalog grows
  (ranking makes several temporaries of the block's size)."""
  return max(1, budget // max(1, items))


def ranks_from_scores(scores: np.ndarray, label_positions: np.ndarray) -> np.ndarray:
  """Each row's 1-based label rank; ties go to the earlier column, so ranks are deterministic."""
  scores = np.asarray(scores)
  positions = np.asarray(label_positions, dtype=np.int64).reshape(-1)
  if scores.ndim != 2 or scores.shape[0] != positions.size:
    raise ValueError(f"scores must be [n, N] with n = {positions.size} label positions, "
                     f"got shape {scores.shape}")
  if np.any(positions >= scores.shape[1]):
    raise ValueError(f"label positions must be < N = {scores.shape[1]}")
  if np.isnan(scores).any():
    raise ValueError("scores contain NaN: a NaN-scoring method cannot be ranked")
  ranks = np.full(positions.size, np.inf)
  known = positions >= 0
  if not known.any():
    return ranks
  scores, positions = scores[known], positions[known]
  label_scores = scores[np.arange(positions.size), positions][:, None]
  higher = np.count_nonzero(scores > label_scores, axis=1)
  earlier = np.arange(scores.shape[1])[None, :] < positions[:, None]
  tied_earlier = np.count_nonzero((scores == label_scores) & earlier, axis=1)
  ranks[known] = 1 + higher + tied_earlier
  return ranks


def ranks_from_top_k(top_k_ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Label ranks from ranked top-K id lists (oracles): position + 1, or inf when absent."""
  top_k_ids = np.asarray(top_k_ids)
  labels = np.asarray(labels).reshape(-1)
  if top_k_ids.ndim != 2 or top_k_ids.shape[0] != labels.size:
    raise ValueError(f"top_k_ids must be [n, k] with n = {labels.size} labels, "
                     f"got shape {top_k_ids.shape}")
  hits = top_k_ids == labels[:, None]
  found = hits.any(axis=1)
  first = hits.argmax(axis=1) if hits.shape[1] else np.zeros(labels.size, dtype=np.int64)
  return np.where(found, first + 1.0, np.inf)


def _gains(ranks: np.ndarray) -> np.ndarray:
  """Per-example value of every metric, [len(METRIC_NAMES), n]: each metric is their mean."""
  ranks = np.asarray(ranks, dtype=np.float64).reshape(-1)
  rows = [ranks <= k for k in RECALL_KS]
  rows += [np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0) for k in NDCG_KS]
  rows.append(np.where(ranks <= MAX_K, 1.0 / ranks, 0.0))
  return np.stack(rows).astype(np.float64)


def metrics_from_ranks(ranks: np.ndarray) -> Dict[str, float]:
  """Every metric of METRIC_NAMES plus the example count "n" (all 0 for no examples)."""
  gains = _gains(ranks)
  n = gains.shape[1]
  means = gains.mean(axis=1) if n else np.zeros(len(METRIC_NAMES))
  return {**{name: float(v) for name, v in zip(METRIC_NAMES, means)}, COUNT: int(n)}


def bootstrap_intervals(ranks: np.ndarray, samples: int = 200, seed: int = 0,
                        level: float = 0.95) -> Dict[str, Tuple[float, float]]:
  """Percentile bootstrap intervals over examples, so a difference can be told from noise."""
  if samples < 1:
    raise ValueError(f"samples must be >= 1, got {samples}")
  if not 0.0 < level < 1.0:
    raise ValueError(f"level must be in (0, 1), got {level}")
  gains = _gains(ranks)
  n = gains.shape[1]
  if n == 0:
    return {name: (0.0, 0.0) for name in METRIC_NAMES}
  rng = np.random.default_rng(seed)
  block = max(1, _BOOTSTRAP_BUDGET // (len(METRIC_NAMES) * n))
  means = []
  for start in range(0, samples, block):
    index = rng.integers(0, n, size=(min(block, samples - start), n))
    means.append(gains[:, index].mean(axis=2))  # [metrics, block]
  means = np.concatenate(means, axis=1)
  tail = 100.0 * (1.0 - level) / 2.0
  lo, hi = np.percentile(means, [tail, 100.0 - tail], axis=1)
  return {name: (float(a), float(b)) for name, a, b in zip(METRIC_NAMES, lo, hi)}
