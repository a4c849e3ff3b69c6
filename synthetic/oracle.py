"""Oracles that rank by the true conversion probability: the ceiling a learned retriever is held to.

Each oracle ranks the whole catalog for one conversion by the probability, under the generative
process of `ctxrec.synthetic.generator`, that the item is the one converted.

Contextual oracle: knows the session's intent category c and its last viewed item v. A session
with n = 1 + Poisson(lambda) views converts, with probability p_viewed, on the item at a uniformly
chosen view position (v with probability 1/n; any other position holds an independent draw from
pop_c), and otherwise on a fresh draw from pop_c. Since n is independent of v,

    P(i | c, v) = p_viewed * E[1/n] * [i = v] + (p_viewed * E[(n-1)/n] + 1 - p_viewed) * pop_c(i)

with E[1/n] = sum_x Poisson(x; lambda) / (x + 1) = (1 - exp(-lambda)) / lambda exactly. Usually v
comes first, then the items of c by popularity; every other item has probability 0.

History oracle: knows the user's long-term interests theta_u but nothing about the session:

    P(i | u) = w_u(primary(i)) * pop(i),    w_u = p_follow * theta_u + (1 - p_follow) * pi.

Ties (e.g. between zero-probability items) go to the earlier item in ground_truth_items order.
Neither oracle scores the full catalog: the top K provably lies in a small candidate set (the K
most popular items of each relevant category, plus v, or plus the K best items by pi * pop), so a
conversion costs O(K log K) even with a million items.
"""
import json
from dataclasses import dataclass
from typing import Dict, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ctxrec.synthetic.generator import METADATA_KEY
from ctxrec.transform import features as f

ORACLE_CONTEXTUAL = "oracle_contextual"
ORACLE_HISTORY = "oracle_history"
ORACLES = (ORACLE_CONTEXTUAL, ORACLE_HISTORY)
CONVERSION_KEYS = [f.USER_ID, f.ITEM_ID, f.TIMESTAMP]
_BATCH_SIZE = 8192
_ROW = "_ground_truth_row"


@dataclass(frozen=True)
class GroundTruth:
  """What both oracles need: true item popularity and each conversion's hidden state."""

  item_ids: np.ndarray  # (N,) item id strings in catalog order.
  item_index: pd.Index  # Item id -> catalog position.
  primary: np.ndarray  # (N,) primary category index.
  popularity: np.ndarray  # (N,) pop_c(i) within the primary category.
  category_ids: np.ndarray  # (C,) category id strings, sorted.
  category_popularity: np.ndarray  # (C,) pi.
  p_follow: float
  p_convert_viewed: float
  views_per_session_mean: float
  keys: pd.DataFrame  # (M rows) user_id, item_id, timestamp of each ground-truth conversion.
  intent: np.ndarray  # (M,) intent category index.
  last_view: np.ndarray  # (M,) last viewed item index.
  interest_categories: np.ndarray  # (M, k) category index, -1 past the user's interests.
  interest_weights: np.ndarray  # (M, k) theta_u, 0 past the user's interests.
  by_category: np.ndarray  # (N,) item indices sorted by (primary, -popularity, index).
  category_offsets: np.ndarray  # (C+1,) start of each category's run in `by_category`.


def load_ground_truth(data_dir: str) -> GroundTruth:
  """Reads the ground_truth tables that `ctxrec.synthetic.generator.generate` wrote."""
  items = pq.read_table(f"{data_dir}/{f.GROUND_TRUTH_ITEMS}.parquet")
  path = f"{data_dir}/{f.GROUND_TRUTH}.parquet"
  conversions = pq.read_table(path)
  metadata = conversions.schema.metadata or {}
  if METADATA_KEY not in metadata:
    raise ValueError(f"{path} has no {METADATA_KEY!r} schema metadata")
  return _from_arrow(items, conversions, json.loads(metadata[METADATA_KEY]))


def make_ground_truth(items: pd.DataFrame, conversions: pd.DataFrame,
                      params: Mapping[str, object]) -> GroundTruth:
  """A GroundTruth from in-memory tables (the parquet files' columns and metadata keys)."""
  return _from_arrow(pa.Table.from_pandas(items, preserve_index=False),
                     pa.Table.from_pandas(conversions, preserve_index=False), params)


def _from_arrow(items: pa.Table, conversions: pa.Table, params: Mapping) -> GroundTruth:
  """Indexes the tables: positions, per-category rankings, padded interests."""
  pi_by_id = dict(params["category_popularity"])
  category_ids = np.array(sorted(pi_by_id), dtype=object)
  categories = pd.Index(category_ids)
  item_ids = np.asarray(items.column(f.ITEM_ID).to_pylist(), dtype=object)
  item_index = pd.Index(item_ids)
  primary = _positions(categories, items.column(f.GT_PRIMARY_CATEGORY), "primary category")
  popularity = items.column(f.GT_POPULARITY).to_numpy().astype(np.float64)
  counts = np.bincount(primary, minlength=category_ids.size)
  names, present = _padded_list(conversions.column(f.GT_INTEREST_CATEGORIES))
  weights, _ = _padded_list(conversions.column(f.GT_INTEREST_WEIGHTS))
  interests = np.full(names.shape, -1, dtype=np.int64)
  interests[present] = _positions(categories, names[present], "interest category")
  return GroundTruth(
      item_ids=item_ids,
      item_index=item_index,
      primary=primary,
      popularity=popularity,
      category_ids=category_ids,
      category_popularity=np.array([pi_by_id[c] for c in category_ids], dtype=np.float64),
      p_follow=float(params["p_follow"]),
      p_convert_viewed=float(params["p_convert_viewed"]),
      views_per_session_mean=float(params["views_per_session_mean"]),
      keys=conversions.select(CONVERSION_KEYS).to_pandas(),
      intent=_positions(categories, conversions.column(f.GT_INTENT_CATEGORY), "intent category"),
      last_view=_positions(item_index, conversions.column(f.GT_LAST_VIEW_ITEM_ID), "last view"),
      interest_categories=interests,
      interest_weights=np.where(present, weights, 0.0).astype(np.float64),
      by_category=np.lexsort((np.arange(item_ids.size), -popularity, primary)),
      category_offsets=np.concatenate([[0], np.cumsum(counts)]),
  )


def _positions(index: pd.Index, values, what: str) -> np.ndarray:
  """Positions of values in index; an unknown value is an error, not a silent -1."""
  if isinstance(values, pa.ChunkedArray):
    values = values.combine_chunks()
  if isinstance(values, pa.Array):
    values = values.to_numpy(zero_copy_only=False)
  positions = index.get_indexer(values)
  if (positions < 0).any():
    raise ValueError(f"unknown {what}: {values[np.flatnonzero(positions < 0)[0]]!r}")
  return positions.astype(np.int64)


def _padded_list(column: pa.ChunkedArray) -> tuple:
  """A list column as a (rows, longest) matrix, plus the mask of real entries."""
  lists = column.combine_chunks()
  lengths = np.diff(lists.offsets.to_numpy())
  values = lists.flatten().to_numpy(zero_copy_only=False)
  width = int(lengths.max()) if lengths.size else 0
  present = np.arange(width)[None, :] < lengths[:, None]
  matrix = np.zeros((lengths.size, width), dtype=values.dtype)
  matrix[present] = values
  return matrix, present


def expected_inverse_views(views_mean: float) -> float:
  """E[1/n] for n = 1 + Poisson(mean), the chance the converted viewed item is the last view."""
  return 1.0 if views_mean <= 0 else float(-np.expm1(-views_mean) / views_mean)


def _match(truth: GroundTruth, conversions: pd.DataFrame) -> np.ndarray:
  """The ground-truth row of each conversion (same user, item, timestamp), in input order."""
  missing = [c for c in CONVERSION_KEYS if c not in conversions.columns]
  if missing:
    raise ValueError(f"conversions lack the columns {missing}")
  keys = conversions[CONVERSION_KEYS].astype({f.TIMESTAMP: "int64"}).reset_index(drop=True)
  rows = truth.keys.astype({f.TIMESTAMP: "int64"}).assign(**{_ROW: np.arange(len(truth.keys))})
  merged = keys.merge(rows.drop_duplicates(CONVERSION_KEYS), on=CONVERSION_KEYS, how="left")
  unmatched = merged[_ROW].isna().to_numpy()
  if unmatched.any():
    first = keys.iloc[int(np.flatnonzero(unmatched)[0])].to_dict()
    raise ValueError(f"{int(unmatched.sum())} of {len(keys)} conversions are not in the ground "
                     f"truth; first unmatched: {first}")
  return merged[_ROW].to_numpy().astype(np.int64)


def _category_heads(truth: GroundTruth, width: int, fill: bool) -> np.ndarray:
  """(C, width): a category's items by falling popularity, then other items in order or -1."""
  size = truth.item_ids.size
  heads = np.full((truth.category_ids.size, width), -1, dtype=np.int64)
  for category in range(truth.category_ids.size):
    start, stop = truth.category_offsets[category], truth.category_offsets[category + 1]
    members = truth.by_category[start:min(stop, start + width)]
    heads[category, :members.size] = members
    if fill and members.size < width:
      nearby = np.arange(min(size, width + members.size))
      others = nearby[truth.primary[nearby] != category]
      heads[category, members.size:] = others[:width - members.size]
  return heads


def _global_head(truth: GroundTruth, k: int) -> np.ndarray:
  """The k items with the highest (1 - p_follow) * pi(primary) * pop, ties by catalog order."""
  key = (1.0 - truth.p_follow) * truth.category_popularity[truth.primary] * truth.popularity
  return np.lexsort((np.arange(key.size), -key))[:k]


def _top_by_score(candidates: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
  """Per row, the k candidates with the highest score, ties by catalog order."""
  order = np.lexsort((candidates, -scores), axis=-1)[:, :k]
  return np.take_along_axis(candidates, order, axis=1)


def _contextual_top(truth: GroundTruth, rows: np.ndarray, heads: np.ndarray,
                    k: int) -> np.ndarray:
  """Top k of P(i | c, v): the head of c's ranking with v's boosted score merged in."""
  inverse = expected_inverse_views(truth.views_per_session_mean)
  p_viewed = truth.p_convert_viewed
  bonus, scale = p_viewed * inverse, p_viewed * (1.0 - inverse) + 1.0 - p_viewed
  intent, last_view = truth.intent[rows, None], truth.last_view[rows, None]
  candidates = np.concatenate([heads[intent[:, 0]], last_view], axis=1)
  in_intent = truth.primary[candidates] == intent
  is_last = candidates == last_view
  scores = scale * truth.popularity[candidates] * in_intent + bonus * is_last
  scores[:, :-1][is_last[:, :-1]] = -np.inf  # v is scored once, in the last column.
  return _top_by_score(candidates, scores, k)


def _history_top(truth: GroundTruth, rows: np.ndarray, heads: np.ndarray,
                 global_head: np.ndarray, k: int) -> np.ndarray:
  """Top k of P(i | u): heads of the interest categories, plus the global head outside them."""
  interests, theta = truth.interest_categories[rows], truth.interest_weights[rows]
  own = heads[np.maximum(interests, 0)]  # (B, interests, k)
  own[interests < 0] = -1
  own = own.reshape(rows.size, -1)
  shared = np.broadcast_to(global_head, (rows.size, global_head.size))
  candidates = np.concatenate([own, shared], axis=1)
  valid = candidates >= 0
  safe = np.maximum(candidates, 0)
  category = truth.primary[safe]
  matches = (category[:, :, None] == interests[:, None, :]) & valid[:, :, None]
  weight = ((1.0 - truth.p_follow) * truth.category_popularity[category]
            + truth.p_follow * (matches * theta[:, None, :]).sum(axis=2))
  scores = np.where(valid, weight * truth.popularity[safe], -np.inf)
  scores[:, own.shape[1]:][matches[:, own.shape[1]:].any(axis=2)] = -np.inf  # Already in `own`.
  return _top_by_score(candidates, scores, k)


def _top_k_indices(truth: GroundTruth, rows: np.ndarray, k: int) -> Dict[str, np.ndarray]:
  """Both oracles' top-k catalog positions for the given ground-truth rows, in batches."""
  size = truth.item_ids.size
  if not 1 <= k <= size:
    raise ValueError(f"k must be in [1, {size}], got {k}")
  context_heads = _category_heads(truth, min(k + 1, size), fill=True)
  history_heads = _category_heads(truth, k, fill=False)
  global_head = _global_head(truth, k)
  out = {name: np.empty((rows.size, k), dtype=np.int64) for name in ORACLES}
  for start in range(0, rows.size, _BATCH_SIZE):
    batch = rows[start:start + _BATCH_SIZE]
    stop = start + batch.size
    out[ORACLE_CONTEXTUAL][start:stop] = _contextual_top(truth, batch, context_heads, k)
    out[ORACLE_HISTORY][start:stop] = _history_top(truth, batch, history_heads, global_head, k)
  return out


def oracle_top_k(truth: GroundTruth, conversions: pd.DataFrame, k: int) -> Dict[str, np.ndarray]:
  """Each oracle's ranked top-k item ids, shape (len(conversions), k), for any ranking metric."""
  ranked = _top_k_indices(truth, _match(truth, conversions), k)
  return {name: truth.item_ids[positions] for name, positions in ranked.items()}


def oracle_recall(truth: GroundTruth, conversions: pd.DataFrame,
                  ks: Sequence[int]) -> Dict[str, Dict[int, float]]:
  """Recall@K (the converted item is in the oracle's top K) per oracle and K."""
  ks = sorted({int(k) for k in ks})
  rows = _match(truth, conversions)
  if rows.size == 0:
    return {name: {k: float("nan") for k in ks} for name in ORACLES}
  labels = truth.item_index.get_indexer(conversions[f.ITEM_ID].to_numpy())[:, None]
  ranked = _top_k_indices(truth, rows, ks[-1])
  return {name: {k: float((positions[:, :k] == labels).any(axis=1).mean()) for k in ks}
          for name, positions in ranked.items()}
