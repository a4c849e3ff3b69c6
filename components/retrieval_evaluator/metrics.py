"""Retrieval metrics from each label's exact rank in the whole catalog, with user-level intervals.

Every eval example has one relevant item, its label, so the label's 1-based rank among all N
catalog items gives every metric:

- recall@K = mean(rank <= K);
- ndcg@K = mean(1 / log2(rank + 1) if rank <= K else 0): with one relevant item IDCG is 1;
- mrr = mean(1 / rank if rank <= MAX_K else 0): MRR@100, so that methods ranking the whole
  catalog and oracles that return only a top-100 list are measured alike.

A label outside the catalog has rank inf and counts as a miss everywhere.

Intervals come from a cluster bootstrap over users: a user's conversions are not independent (one
taste, one session habit), so each replicate draws users with replacement and takes all their
examples. Lifts over a baseline are paired: both methods are scored on the same replicates.
"""
import dataclasses
from typing import Dict, Iterator, Mapping, Optional, Tuple

import numpy as np

from ctxrec.trainer.config import MODE_CATEGORIES, MODE_ITEM

# ---- Methods and modes, named once for the evaluator, its report and the tools. ----
CONTEXTUAL = "contextual"
HISTORY_ONLY = "history_only"
POPULARITY = "popularity"
CONTEXT_POPULARITY = "context_popularity"
LAST_VIEWED = "last_viewed"
SESSION_VIEWS = "session_views"
ORACLE_CONTEXTUAL = "oracle_contextual"  # same names as ctxrec.synthetic.oracle.ORACLES
ORACLE_CONTEXT_ITEM = "oracle_context_item"
ORACLE_CONTEXT_CATEGORIES = "oracle_context_categories"
ORACLE_HISTORY = "oracle_history"
METHODS = (CONTEXTUAL, HISTORY_ONLY, POPULARITY, CONTEXT_POPULARITY, LAST_VIEWED, SESSION_VIEWS,
           ORACLE_CONTEXTUAL, ORACLE_CONTEXT_ITEM, ORACLE_CONTEXT_CATEGORIES, ORACLE_HISTORY)
MODEL_METHODS = (CONTEXTUAL, HISTORY_ONLY)  # scored by a trained two-tower model
BASELINE_METHODS = (HISTORY_ONLY, POPULARITY, CONTEXT_POPULARITY, LAST_VIEWED,
                    SESSION_VIEWS)  # to beat
ORACLE_METHODS = (ORACLE_CONTEXTUAL, ORACLE_CONTEXT_ITEM, ORACLE_CONTEXT_CATEGORIES,
                  ORACLE_HISTORY)  # synthetic data only (ground truth)
CONTEXT_FREE_ORACLES = (ORACLE_HISTORY,)  # the other oracles need a real context
# The oracle that sees what the model's context carries (TrainerConfig.context_mode): its ceiling.
CONTEXT_MODE_CEILINGS = {MODE_CATEGORIES: ORACLE_CONTEXT_CATEGORIES, MODE_ITEM: ORACLE_CONTEXT_ITEM}

REAL_CONTEXT = "real_context"  # the eval example's logged request context
NO_CONTEXT = "no_context"  # the context removed, as for a request without one
MODES = (REAL_CONTEXT, NO_CONTEXT)

# ---- Slices of the eval examples, reported for every method and mode. ----
COLD_START = "cold_start"  # empty history: first-ever conversions, the cold-start state
CONTEXT_OFF_CATEGORY = "context_off_category"  # most recent view's primary category != label's
UNSEEN_LABEL = "unseen_label"  # the label item has no train-period event: label_seen 0
LABEL_SEEN_1 = "label_seen_1"  # the label item has exactly 1 train-period event
LABEL_SEEN_2_9 = "label_seen_2_9"  # 2 to 9
LABEL_SEEN_10_PLUS = "label_seen_10_plus"  # 10 or more
# Label train-frequency buckets: slice -> fewest train-period events of the label item (up to
# the next bucket's). The 0 bucket is unseen_label itself, one mask under one name.
LABEL_SEEN_BUCKETS = {UNSEEN_LABEL: 0, LABEL_SEEN_1: 1, LABEL_SEEN_2_9: 2, LABEL_SEEN_10_PLUS: 10}
UNSEEN_CONTEXT = "unseen_context"  # the most recent view's item has no train-period event
SESSION_1 = "session_1"  # real-context examples whose logged session has 1 view
SESSION_2_3 = "session_2_3"  # 2 or 3 views
SESSION_4_PLUS = "session_4_plus"  # 4 or more (an example keeps up to DEFAULT_SESSION_VIEWS)
# Session-length buckets: slice -> fewest views of the logged session (up to the next bucket's);
# over the real-context examples only, which they partition.
SESSION_LENGTH_BUCKETS = {SESSION_1: 1, SESSION_2_3: 2, SESSION_4_PLUS: 4}
SLICES = (COLD_START, CONTEXT_OFF_CATEGORY, *LABEL_SEEN_BUCKETS, UNSEEN_CONTEXT,
          *SESSION_LENGTH_BUCKETS)

# ---- Metrics. ----
RECALL_KS = (10, 20, 50, 100)
NDCG_KS = (10, 100)
MAX_K = 100
MRR = "mrr"
COUNT = "n"
METRIC_NAMES = (tuple(f"recall@{k}" for k in RECALL_KS) + tuple(f"ndcg@{k}" for k in NDCG_KS)
                + (MRR,))
TARGET = f"recall@{MAX_K}"  # the metric the blessing and the lifts compare
SLICE_METRICS = ("recall@10", TARGET)

_RESAMPLE_BUDGET = 1 << 22  # user weights per block of replicates (int64: 32 MB)
_CACHE_BUDGET = 1 << 24  # replicate weights kept for reuse across methods (int32: 64 MB)
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


def ranks_of_positions(scores: np.ndarray, positions: np.ndarray) -> np.ndarray:
  """[n, P] ranks of P catalog rows per example (inf for -1), each ranked as a label: the
  pinned items' ranks; a column is scored only on the rows that have an item there."""
  positions = np.asarray(positions, dtype=np.int64).reshape(len(scores), -1)
  out = np.full(positions.shape, np.inf)
  for column in range(positions.shape[1]):
    rows = np.flatnonzero(positions[:, column] >= 0)
    if rows.size:
      out[rows, column] = ranks_from_scores(scores[rows], positions[rows, column])
  return out


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


class UserResample:
  """One cluster bootstrap: each replicate draws as many users as there are, with replacement,
  and takes all their examples. Every call replays the same draws, so methods scored through
  one UserResample are paired (same users, same examples in every replicate)."""

  def __init__(self, users: np.ndarray, samples: int = 200, seed: int = 0):
    if samples < 1:
      raise ValueError(f"samples must be >= 1, got {samples}")
    users = np.asarray(users).reshape(-1)
    self.codes = np.unique(users, return_inverse=True)[1].reshape(-1) if users.size else (
        np.zeros(0, np.int64))
    self.users = int(self.codes.max()) + 1 if users.size else 0
    self.samples, self.seed = samples, seed
    self._cache = None

  def weights(self) -> Iterator[np.ndarray]:
    """[replicates, users] blocks: how often each user is drawn (same draws on every call)."""
    if self._cache is not None:
      yield from self._cache
      return
    keep = self.samples * self.users <= _CACHE_BUDGET
    blocks, rng = [], np.random.default_rng(self.seed)
    rows = max(1, _RESAMPLE_BUDGET // max(1, self.users))
    for start in range(0, self.samples, rows):
      size = min(rows, self.samples - start)
      draws = rng.integers(0, self.users, size=(size, self.users))
      draws += self.users * np.arange(size)[:, None]  # one bincount for the whole block
      block = np.bincount(draws.ravel(), minlength=size * self.users).reshape(size, -1)
      if keep:
        blocks.append(block.astype(np.int32))
      yield block
    self._cache = blocks if keep else None

  def totals(self, values: np.ndarray) -> np.ndarray:
    """[samples, k]: each row of `values` ([k, n], one column per example) summed over each
    replicate's examples; a user drawn twice counts twice."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if values.shape[1] != self.codes.size:
      raise ValueError(f"values must have one column per example ({self.codes.size}), "
                       f"got shape {values.shape}")
    sums = np.stack([np.bincount(self.codes, weights=row, minlength=self.users)
                     for row in values])  # [k, users]
    return np.concatenate([block @ sums.T for block in self.weights()])


def _bounds(replicates: np.ndarray, level: float) -> Tuple[np.ndarray, np.ndarray]:
  """Percentile bounds per column, as order statistics (no interpolation: safe with inf)."""
  tail = 100.0 * (1.0 - level) / 2.0
  return (np.percentile(replicates, tail, axis=0, method="lower"),
          np.percentile(replicates, 100.0 - tail, axis=0, method="higher"))


def relative_lift(model: np.ndarray, baseline: np.ndarray) -> np.ndarray:
  """(model - baseline) / baseline; +inf when only the model recalls anything, 0 when neither."""
  model = np.asarray(model, dtype=np.float64)
  baseline = np.asarray(baseline, dtype=np.float64)
  ratio = model / np.where(baseline > 0, baseline, 1.0) - 1.0
  return np.where(baseline > 0, ratio, np.where(model > 0, np.inf, 0.0))


def percent(lift: Optional[float]) -> str:
  """A relative lift as a signed percentage, alike in the blessing's reasons and the report;
  None (how summary.json writes an unbounded lift) and inf are "+inf"."""
  return "+inf" if lift is None or np.isinf(lift) else f"{100 * lift:+.1f}%"


@dataclasses.dataclass
class Statistics:
  """Every method's metrics on one set of examples, user-level intervals, the model's lifts."""
  metrics: Dict[str, Dict[str, float]]  # method -> metric -> value, and "n"
  intervals: Dict[str, Dict[str, Tuple[float, float]]]  # method -> metric -> (lo, hi)
  lifts: Dict[str, Dict[str, object]]  # baseline -> {"lift", "interval", "n", "users"}


def _check(samples: int, level: float) -> None:
  if samples < 1:
    raise ValueError(f"samples must be >= 1, got {samples}")
  if not 0.0 < level < 1.0:
    raise ValueError(f"level must be in (0, 1), got {level}")


def statistics(ranks: Mapping[str, np.ndarray], users: np.ndarray, samples: int = 200,
               seed: int = 0, level: float = 0.95, model: str = CONTEXTUAL) -> Statistics:
  """Metrics of every method (all ranking the same examples, owned by `users`), their intervals
  and `model`'s paired relative lift in TARGET over each baseline, all from one user resample."""
  _check(samples, level)
  users = np.asarray(users).reshape(-1)
  for method, method_ranks in ranks.items():
    if np.size(method_ranks) != users.size:
      raise ValueError(f"{method}: {np.size(method_ranks)} ranks for {users.size} examples")
  metrics = {method: metrics_from_ranks(r) for method, r in ranks.items()}
  if users.size == 0:
    return Statistics(metrics, {x: {name: (0.0, 0.0) for name in METRIC_NAMES} for x in ranks}, {})
  resample = UserResample(users, samples, seed)
  examples = resample.totals(np.ones(users.size))  # [samples, 1]
  intervals, hits = {}, {}
  for method, method_ranks in ranks.items():
    totals = resample.totals(_gains(method_ranks))
    lo, hi = _bounds(totals / examples, level)
    intervals[method] = {name: (float(a), float(b)) for name, a, b in zip(METRIC_NAMES, lo, hi)}
    hits[method] = totals[:, METRIC_NAMES.index(TARGET)]
  lifts = {baseline: _lift(metrics[model][TARGET], metrics[baseline][TARGET], hits[model],
                           hits[baseline], level, resample)
           for baseline in BASELINE_METHODS if baseline in ranks and baseline != model
           and model in ranks}
  return Statistics(metrics, intervals, lifts)


def _lift(model: float, baseline: float, model_hits: np.ndarray, baseline_hits: np.ndarray,
          level: float, resample: UserResample) -> Dict[str, object]:
  """The point lift and its paired interval: both methods' hits on the same replicates."""
  lo, hi = _bounds(relative_lift(model_hits, baseline_hits), level)
  return {"lift": float(relative_lift(model, baseline)), "interval": (float(lo), float(hi)),
          COUNT: int(resample.codes.size), "users": resample.users}


def bootstrap_intervals(ranks: np.ndarray, samples: int = 200, seed: int = 0,
                        level: float = 0.95,
                        users: Optional[np.ndarray] = None) -> Dict[str, Tuple[float, float]]:
  """Percentile bootstrap intervals of one method's metrics, resampling `users` (each example
  its own unit when None), so a difference can be told from noise."""
  ranks = np.asarray(ranks, dtype=np.float64).reshape(-1)
  units = np.arange(ranks.size) if users is None else users
  return statistics({CONTEXTUAL: ranks}, units, samples, seed, level).intervals[CONTEXTUAL]
