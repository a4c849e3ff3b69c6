"""Ranks of the eval labels over the full catalog under each method (models, baselines, oracles)."""
import dataclasses
import os
import tempfile
from typing import Dict, Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from ctxrec.components.retrieval_evaluator import baselines
from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.trainer import exported_model
from ctxrec.transform import features as f

Ranks = Dict[str, Dict[str, np.ndarray]]  # method -> mode -> 1-based label ranks


@dataclasses.dataclass
class Catalog:
  """Every item the retriever can return, in items-table order."""
  items: pd.DataFrame  # item_id, categories, confidences
  primary: np.ndarray  # primary category index per item
  categories: Dict[str, int]  # category id -> index
  index: pd.Index  # item id -> catalog row

  @classmethod
  def load(cls, items_path: str) -> "Catalog":
    catalog = input_tables.load_items(items_path)
    items = input_tables.items_frame(catalog)
    names = sorted({c for item in catalog.values() for c in item.categories})
    index = {name: i for i, name in enumerate(names)}
    primary = np.array([index[i.categories[0]] for i in catalog.values()])
    return cls(items, primary, index, pd.Index(items[f.ITEM_ID]))

  def positions(self, item_ids: np.ndarray) -> np.ndarray:
    """Catalog row of each id, -1 when the item is not in the catalog."""
    return self.index.get_indexer(pd.Index(item_ids))


def conversion_counts(events_path: str, catalog: Catalog, before: int) -> np.ndarray:
  """Conversions per catalog item with timestamp < `before` (the train period)."""
  counts = np.zeros(len(catalog.items), np.int64)
  for _, frame in input_tables.iter_batches(events_path, f.EVENTS_COLUMNS):
    timestamps, _ = input_tables.parse_timestamps(frame[f.TIMESTAMP])
    keep = (frame[f.EVENT_TYPE].to_numpy() == f.EVENT_CONVERSION) & (timestamps < before)
    rows = catalog.positions(frame[f.ITEM_ID].to_numpy()[keep])
    np.add.at(counts, rows[rows >= 0], 1)
  return counts


def context_weights(requests: exported_model.EvalRequests, catalog: Catalog) -> np.ndarray:
  """[n, C] confidence of each catalog category in each request's context (0 if absent)."""
  names = requests.inputs[f.CONTEXT_CATEGORIES]
  weights = requests.inputs[f.CONTEXT_CONFIDENCES]
  out = np.zeros((len(names), len(catalog.categories)), np.float32)
  for row, col in zip(*np.nonzero(names != "")):
    category = catalog.categories.get(names[row, col])
    if category is not None:
      out[row, category] = max(out[row, category], weights[row, col])
  return out


def model_ranks(signatures, item_embeddings: np.ndarray, inputs: Dict[str, np.ndarray],
                positions: np.ndarray) -> np.ndarray:
  """Exact ranks of the labels by dot product of user and item embeddings."""
  users = exported_model.embed(signatures[f.SIGNATURE_SERVING_DEFAULT], inputs, f.USER_EMBEDDING)
  batch_size = m.rows_per_block(len(item_embeddings))
  return np.concatenate([
      m.ranks_from_scores(users[start:start + batch_size] @ item_embeddings.T,
                          positions[start:start + batch_size])
      for start in range(0, len(users), batch_size)]) if len(users) else np.zeros(0)


def oracle_ranks(data_dir: str, requests: exported_model.EvalRequests) -> Optional[Ranks]:
  """Both oracles' ranks when the data folder has the generator's ground truth, else None."""
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
  top = oracle.oracle_top_k(truth, conversions, m.MAX_K)
  ranks = {name: m.ranks_from_top_k(top[name], requests.labels) for name in top}
  has = requests.has_context
  return {m.ORACLE_CONTEXTUAL: {m.REAL_CONTEXT: ranks[oracle.ORACLE_CONTEXTUAL][has]},
          m.ORACLE_HISTORY: {m.REAL_CONTEXT: ranks[oracle.ORACLE_HISTORY][has],
                             m.NO_CONTEXT: ranks[oracle.ORACLE_HISTORY]}}


def all_ranks(model, baseline_model, requests: exported_model.EvalRequests, catalog: Catalog,
              counts: np.ndarray, data_dir: str) -> Ranks:
  """Ranks for every method in both modes (real_context: the examples that have a context)."""
  positions = catalog.positions(requests.labels)
  has = requests.has_context
  inputs_with_context = {n: v[has] for n, v in requests.inputs.items()}
  no_context = exported_model.without_context(requests.inputs)
  ranks: Ranks = {}
  for method, signatures in ((m.CONTEXTUAL, model.signatures),
                             (m.HISTORY_ONLY, baseline_model.signatures)):
    items = exported_model.embed_catalog(signatures, catalog.items)
    ranks[method] = {
        m.REAL_CONTEXT: model_ranks(signatures, items, inputs_with_context, positions[has]),
        m.NO_CONTEXT: model_ranks(signatures, items, no_context, positions)}
  popularity = baselines.popularity_ranks(counts, positions)
  ranks[m.POPULARITY] = {m.REAL_CONTEXT: popularity[has], m.NO_CONTEXT: popularity}
  ranks[m.CONTEXT_POPULARITY] = {
      m.REAL_CONTEXT: baselines.context_popularity_ranks(
          counts, catalog.primary, context_weights(requests, catalog)[has], positions[has]),
      m.NO_CONTEXT: popularity}  # without a context, "related items" is plain popularity
  ranks.update(oracle_ranks(data_dir, requests) or {})
  return ranks
