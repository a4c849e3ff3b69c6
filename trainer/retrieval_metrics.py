"""Exact full-catalog ranking of labels: Recall@K from user and item embeddings."""
from typing import Dict, Sequence

import numpy as np


def label_ranks(users: np.ndarray, items: np.ndarray, item_ids: np.ndarray,
                labels: np.ndarray, batch_size: int = 2048) -> np.ndarray:
  """1-based rank of each label among all items by dot product (inf if not in the catalog)."""
  index = {item: i for i, item in enumerate(item_ids)}
  positions = np.array([index.get(label, -1) for label in labels])
  ranks = np.full(len(labels), np.inf)
  for start in range(0, len(labels), batch_size):
    scores = users[start:start + batch_size] @ items.T
    rows = np.arange(scores.shape[0])
    pos = positions[start:start + batch_size]
    known = pos >= 0
    label_scores = scores[rows[known], pos[known]]
    higher = (scores[known] > label_scores[:, None]).sum(axis=1)
    ranks[start:start + batch_size][known] = higher + 1
  return ranks


def recall_at(ranks: np.ndarray, ks: Sequence[int]) -> Dict[int, float]:
  return {k: float(np.mean(ranks <= k)) for k in ks}
