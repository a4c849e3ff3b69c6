"""Ranks of the eval labels over the full catalog under each method (models, baselines, oracles)."""
import dataclasses
import os
import tempfile
from typing import Dict, Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from ctxrec.components import request_context
from ctxrec.components.request_context import Context
from ctxrec.components.retrieval_evaluator import baselines
from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.trainer import exported_model
from ctxrec.transform import category_keys
from ctxrec.transform import features as f

Ranks = Dict[str, Dict[str, np.ndarray]]  # method -> mode -> 1-based label ranks


@dataclasses.dataclass
class Catalog:
  """Every item the retriever can return, in items-table order."""
  items: pd.DataFrame  # item_id, categories, confidences
  primary: np.ndarray  # primary category index per item
  categories: Dict[str, int]  # category id -> index
  index: pd.Index  # item id -> catalog row
  primary_keys: np.ndarray  # category_keys of each item's primary category (the boosts')

  @classmethod
  def load(cls, items_path: str) -> "Catalog":
    catalog = input_tables.load_items(items_path)
    items = input_tables.items_frame(catalog)
    names = sorted({c for item in catalog.values() for c in item.categories})
    index = {name: i for i, name in enumerate(names)}
    primary = np.array([index[i.categories[0]] for i in catalog.values()])
    keys = category_keys.keys_of(names)[primary] if names else np.zeros(0, np.int64)
    return cls(items, primary, index, pd.Index(items[f.ITEM_ID]), keys)

  def positions(self, item_ids: np.ndarray) -> np.ndarray:
    """Catalog row of each id, -1 when the item is not in the catalog."""
    return self.index.get_indexer(pd.Index(item_ids))


@dataclasses.dataclass
class TrainCounts:
  """Per catalog item, what the train period (before the eval start) saw of it."""
  conversions: np.ndarray  # conversions: what the popularity baselines rank by
  events: np.ndarray  # events of any type: 0 means the item is unseen in training


def train_counts(events_path: str, catalog: Catalog, before: int,
                 timestamp_unit: str = "s") -> TrainCounts:
  """Conversions and events per catalog item with timestamp < `before` (the train period),
  each distinct event once, as SequenceExampleGen counts them."""
  hashes, rows, converted = [], [], []
  for _, frame in input_tables.iter_batches(events_path, f.EVENTS_COLUMNS, timestamp_unit):
    seconds, _ = input_tables.parse_timestamps(frame[f.TIMESTAMP], timestamp_unit)
    train = np.flatnonzero(seconds < before)
    known = catalog.positions(frame[f.ITEM_ID].to_numpy()[train])
    kept = train[known >= 0]
    user_ids, item_ids, event_types = (frame[c].to_numpy()[kept]
                                       for c in (f.USER_ID, f.ITEM_ID, f.EVENT_TYPE))
    hashes.append(input_tables.event_hashes(user_ids, item_ids, event_types, seconds[kept]))
    rows.append(known[known >= 0])
    converted.append(event_types == f.EVENT_CONVERSION)
  if not rows:
    empty = np.zeros(len(catalog.items), np.int64)
    return TrainCounts(empty, empty.copy())
  first = input_tables.first_occurrences(np.concatenate(hashes))
  rows, converted = np.concatenate(rows)[first], np.concatenate(converted)[first]
  return TrainCounts(np.bincount(rows[converted], minlength=len(catalog.items)),
                     np.bincount(rows, minlength=len(catalog.items)))


def context_weights(contexts: Sequence[Context], catalog: Catalog,
                    views: Optional[int] = 1) -> np.ndarray:
  """[n, C] weight of each catalog category in each session: its confidence in each of the first
  `views` views (all when None), view j weighted by baselines.recency_weight(j) and summed; the
  default, the most recent view alone, is context_popularity's and last_viewed's."""
  out = np.zeros((len(contexts), len(catalog.categories)), np.float64)
  for row, context in enumerate(contexts):
    for position, view in enumerate(context.views[:views]):
      confidence: Dict[int, float] = {}
      for name, weight in zip(view.categories, view.confidences):
        category = catalog.categories.get(name)
        if category is not None:
          confidence[category] = max(confidence.get(category, 0.0), float(weight))
      for category, weight in confidence.items():
        out[row, category] += baselines.recency_weight(position) * weight
  return out


def pinned_positions(contexts: Sequence[Context], catalog: Catalog,
                     views: Optional[int] = None) -> np.ndarray:
  """[n, P] catalog rows of each session's pinned items (request_context.pinned_items over its
  first `views` views, all when None), in order, -1 past them or when not catalogued."""
  pinned = [request_context.pinned_items(c, (), len(c.views) if views is None else views)
            for c in contexts]
  out = np.full((len(contexts), max([1] + [len(p) for p in pinned])), -1, dtype=np.int64)
  for row, items in enumerate(pinned):
    out[row, :len(items)] = catalog.positions(np.array(items, dtype=object))
  return out


def model_ranks(signatures, item_embeddings: np.ndarray, item_keys: np.ndarray,
                inputs: Dict[str, np.ndarray], positions: np.ndarray,
                pinned: Optional[np.ndarray] = None) -> np.ndarray:
  """Exact ranks of the labels by the model's score (the dot product of user and item
  embeddings, plus the user's boosts of the items' primary category keys, as the service
  scores); with `pinned` ([n, P] catalog rows, -1 for none), each row's pinned items go first,
  as the service returns them (request_context.pinned_items, baselines.pinned_first)."""
  if not len(positions):
    return np.zeros(0)
  users = exported_model.outputs(signatures[f.SIGNATURE_SERVING_DEFAULT], inputs)
  embeddings = users[f.USER_EMBEDDING]
  boost_keys, boost_weights = users.get(f.BOOST_KEYS), users.get(f.BOOST_WEIGHTS)
  batch_size = m.rows_per_block(len(item_embeddings))
  labels, pins = [], []
  for start in range(0, len(embeddings), batch_size):
    rows = slice(start, start + batch_size)
    scores = embeddings[rows] @ item_embeddings.T
    if boost_keys is not None:
      scores += category_keys.boost_scores(boost_keys[rows], boost_weights[rows], item_keys)
    labels.append(m.ranks_from_scores(scores, positions[rows]))
    if pinned is not None:
      pins.append(m.ranks_of_positions(scores, pinned[rows]))
  ranks = np.concatenate(labels)
  if pinned is None:
    return ranks
  return baselines.pinned_first(ranks, np.concatenate(pins), pinned, positions)


def oracle_ranks(data_dir: str, requests: exported_model.EvalRequests,
                 views_kept: int = f.DEFAULT_SESSION_VIEWS) -> Optional[Ranks]:
  """Every oracle's ranks when the data folder has the generator's ground truth, else None; an
  oracle that needs the session's context ranks only the real_context examples, and sees each
  example's whole logged session (`views_kept`: the views SequenceExampleGen keeps)."""
  if not tf.io.gfile.exists(os.path.join(data_dir, f"{f.GROUND_TRUTH}.parquet")):
    return None
  from ctxrec.synthetic import oracle  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as local:  # the oracle reads local files; data may be gs://
    for table in (f.GROUND_TRUTH, f.GROUND_TRUTH_ITEMS):
      tf.io.gfile.copy(os.path.join(data_dir, f"{table}.parquet"),
                       os.path.join(local, f"{table}.parquet"))
    truth = oracle.load_ground_truth(local)
  conversions = pd.DataFrame({f.USER_ID: requests.user_ids, f.ITEM_ID: requests.labels,
                              f.TIMESTAMP: requests.timestamps})
  sessions = [[(view.item_id, view.seconds_ago) for view in context.views]
              for context in requests.contexts]
  top = oracle.oracle_top_k(truth, conversions, m.MAX_K, sessions=sessions,
                            views_kept=views_kept)
  has, out = requests.has_context, {}
  for name in oracle.ORACLES:
    ranks = m.ranks_from_top_k(top[name], requests.labels)
    out[name] = {m.REAL_CONTEXT: ranks[has]}
    if name in m.CONTEXT_FREE_ORACLES:
      out[name][m.NO_CONTEXT] = ranks
  return out


def all_ranks(model, baseline_model, requests: exported_model.EvalRequests, catalog: Catalog,
              counts: np.ndarray, data_dir: str) -> Ranks:
  """Ranks for every method in both modes (rows as mode_rows: real_context, the examples that
  have a context); `counts` are train conversions per catalog item. The contextual model pins
  the distinct items of the first session_views views, as the service does."""
  positions = catalog.positions(requests.labels)
  has = requests.has_context
  contexts = [c for c, kept in zip(requests.contexts, has) if kept]
  inputs_with_context = {n: v[has] for n, v in requests.inputs.items()}
  no_context = exported_model.without_context(requests.inputs)
  views, _ = exported_model.session_widths(exported_model.signature_inputs(
      model.signatures[f.SIGNATURE_SERVING_DEFAULT]))
  ranks: Ranks = {}
  for method, signatures in ((m.CONTEXTUAL, model.signatures),
                             (m.HISTORY_ONLY, baseline_model.signatures)):
    items = exported_model.embed_catalog(signatures, catalog.items)
    pinned = pinned_positions(contexts, catalog, views) if method == m.CONTEXTUAL else None
    ranks[method] = {
        m.REAL_CONTEXT: model_ranks(signatures, items, catalog.primary_keys, inputs_with_context,
                                    positions[has], pinned),
        m.NO_CONTEXT: model_ranks(signatures, items, catalog.primary_keys, no_context,
                                  positions)}
  popularity = baselines.popularity_ranks(counts, positions)
  ranks[m.POPULARITY] = {m.REAL_CONTEXT: popularity[has], m.NO_CONTEXT: popularity}
  ranks.update(context_baseline_ranks(contexts, catalog, counts, positions[has], popularity))
  ranks.update(oracle_ranks(data_dir, requests) or {})
  return ranks


def context_baseline_ranks(contexts: Sequence[Context], catalog: Catalog, counts: np.ndarray,
                           positions: np.ndarray, popularity: np.ndarray) -> Ranks:
  """context_popularity, last_viewed and session_views on the real-context rows (`contexts`,
  label `positions`); without a context each is plain `popularity`, all rows' ranks."""
  last = pinned_positions(contexts, catalog, 1)
  labels, viewed = baselines.context_ranks(counts, catalog.primary,
                                           context_weights(contexts, catalog), [positions, last])
  session = baselines.session_views_ranks(counts, catalog.primary,
                                          context_weights(contexts, catalog, None),
                                          pinned_positions(contexts, catalog), positions)
  real = {m.CONTEXT_POPULARITY: labels,
          m.LAST_VIEWED: baselines.pinned_first(labels, viewed, last, positions),
          m.SESSION_VIEWS: session}
  return {method: {m.REAL_CONTEXT: r, m.NO_CONTEXT: popularity} for method, r in real.items()}


def mode_rows(requests: exported_model.EvalRequests) -> Dict[str, np.ndarray]:
  """The eval rows each mode ranks, in the order of its ranks (see all_ranks)."""
  return {m.REAL_CONTEXT: np.flatnonzero(requests.has_context),
          m.NO_CONTEXT: np.arange(len(requests.labels))}


def context_positions(requests: exported_model.EvalRequests, catalog: Catalog) -> np.ndarray:
  """Catalog row of each request's most recent view, -1 when it has none or it is not
  catalogued."""
  ids = [c.views[0].item_id if c.views else "" for c in requests.contexts]
  return catalog.positions(np.array(ids, dtype=object))


def _context_primary(requests: exported_model.EvalRequests, catalog: Catalog) -> np.ndarray:
  """Catalog index of each most recent view's primary (highest-confidence) category, -1 when
  none."""
  out = np.full(len(requests.contexts), -1, dtype=np.int64)
  for row, context in enumerate(requests.contexts):
    view = context.views[0] if context.views else None
    if view is not None and view.categories:
      primary = view.categories[int(np.argmax(view.confidences))]
      out[row] = catalog.categories.get(primary, -1)
  return out


def session_length_buckets(lengths: np.ndarray, has_context: np.ndarray) -> Dict[str, np.ndarray]:
  """Which real-context rows fall in each bucket of metrics.SESSION_LENGTH_BUCKETS by the views
  of their logged session: every real-context row in exactly one, no other row."""
  lows = np.array(list(m.SESSION_LENGTH_BUCKETS.values()))
  bucket = np.searchsorted(lows, np.asarray(lengths), side="right") - 1
  return {name: np.asarray(has_context) & (bucket == i)
          for i, name in enumerate(m.SESSION_LENGTH_BUCKETS)}


def train_frequency(rows: np.ndarray, events: np.ndarray) -> np.ndarray:
  """Train-period events of each catalog row's item; 0 outside the catalog (-1), as unseen."""
  return np.where(rows >= 0, np.asarray(events)[np.maximum(rows, 0)], 0)


def label_seen_buckets(frequency: np.ndarray) -> Dict[str, np.ndarray]:
  """Which rows fall in each bucket of metrics.LABEL_SEEN_BUCKETS, by their label's train
  frequency: every row in exactly one."""
  lows = np.array(list(m.LABEL_SEEN_BUCKETS.values()))
  bucket = np.searchsorted(lows, np.asarray(frequency), side="right") - 1
  return {name: bucket == i for i, name in enumerate(m.LABEL_SEEN_BUCKETS)}


def slice_masks(requests: exported_model.EvalRequests, catalog: Catalog,
                events: np.ndarray) -> Dict[str, np.ndarray]:
  """Which eval rows fall in each slice of metrics.SLICES, in that order; `events` are
  train-period events per catalog item (an item outside the catalog is unseen)."""
  has = requests.has_context
  labels, contexts = catalog.positions(requests.labels), context_positions(requests, catalog)
  label_primary = np.where(labels >= 0, catalog.primary[np.maximum(labels, 0)], -2)
  masks = {
      m.COLD_START: ~(requests.inputs[f.HISTORY_ITEM_IDS] != "").any(axis=1),
      m.CONTEXT_OFF_CATEGORY: has & (_context_primary(requests, catalog) != label_primary),
      m.UNSEEN_CONTEXT: has & (train_frequency(contexts, events) == 0),
      **label_seen_buckets(train_frequency(labels, events)),
      **session_length_buckets(np.array([len(c.views) for c in requests.contexts]), has)}
  return {name: masks[name] for name in m.SLICES}


def statistics_by_mode(ranks: Ranks, rows: Dict[str, np.ndarray], users: np.ndarray,
                       samples: int, seed: int,
                       mask: Optional[np.ndarray] = None) -> Dict[str, m.Statistics]:
  """metrics.statistics of every method, mode by mode, on the eval rows each mode ranks (only
  those in `mask`, over all eval rows, when given): intervals resample the users of those rows."""
  out = {}
  for mode in m.MODES:
    present = {method: by_mode[mode] for method, by_mode in ranks.items() if mode in by_mode}
    if not present:
      continue
    keep = np.ones(rows[mode].size, bool) if mask is None else np.asarray(mask)[rows[mode]]
    out[mode] = m.statistics({method: r[keep] for method, r in present.items()},
                             np.asarray(users)[rows[mode]][keep], samples, seed)
  return out
