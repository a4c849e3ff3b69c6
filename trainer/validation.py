"""Which weights a training run keeps: Recall@100 on the train split's latest examples.

The in-batch loss is the wrong judge: on demo (seed 7) it is lowest at step 100 of 500 and
rises after, while the evaluator's Recall@100 still grows to step 500. So a run is judged the
way the evaluator judges it: on the train split's future (its latest labels, as eval is the
log's), by the rank of each held-out example's label among every item that was a train label;
the examples with a logged context asked with it (its viewed items pinned first, as served),
and every example asked without context. A pseudo-context (derived from the label) would favour the prior that reads it.
"""
import collections
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from ctxrec.trainer.config import TrainerConfig
from ctxrec.trainer.exported_model import CONTEXT_FEATURES
from ctxrec.trainer.input_pipeline import make_dataset
from ctxrec.trainer.score_priors import batch_boosts, first_occurrences
from ctxrec.transform import category_keys
from ctxrec.transform import features as f

RECALL_AT = 100
MAX_EXAMPLES = 4096  # held-out examples scored per validation (bounded on any log)
CANDIDATE_BLOCK = 8192  # candidates scored at once ([batch, boosts, block] comparisons)


def label_catalog(dataset: tf.data.Dataset) -> Dict[str, np.ndarray]:
  """The distinct labels of a pass over `dataset` (item id, categories, confidences), the
  candidates a validation ranks against."""
  seen: Dict[bytes, tuple] = {}
  for batch in dataset:
    for item, categories, confidences in zip(batch[f.LABEL_ITEM_ID].numpy(),
                                             batch[f.LABEL_CATEGORIES].numpy(),
                                             batch[f.LABEL_CONFIDENCES].numpy()):
      seen.setdefault(item, (categories, confidences))
  items = list(seen)
  return {f.ITEM_ID: np.asarray(items, object),
          f.ITEM_CATEGORIES: np.stack([seen[i][0] for i in items]),
          f.ITEM_CONFIDENCES: np.stack([seen[i][1] for i in items])}


def label_counts(dataset: tf.data.Dataset) -> Dict[bytes, int]:
  """Label id -> examples in a pass over `dataset`: the popularity a run trained on may know
  (the held-out labels' own counts would flatter the popularity prior)."""
  counts: Dict[bytes, int] = collections.Counter()
  for batch in dataset:
    counts.update(batch[f.LABEL_ITEM_ID].numpy().tolist())
  return dict(counts)


def _without_context(batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  return {name: (tf.zeros_like(value) if value.dtype != tf.string else tf.fill(tf.shape(value), ""))
          if name in CONTEXT_FEATURES else value for name, value in batch.items()}


class Validation:
  """Held-out examples and the candidates they are ranked against; `recall(model)` scores."""

  def __init__(self, logged: tf.data.Dataset, examples: tf.data.Dataset,
               candidates: Dict[str, np.ndarray],
               trained_label_counts: Optional[Dict[bytes, int]] = None):
    self.asked = [(_bounded(logged), False), (_bounded(examples), True)]
    self.candidates = {name: tf.constant(value) for name, value in candidates.items()}
    self.trained_label_counts = trained_label_counts  # the popularity to score by (None: all)
    self._outranked = None

  @classmethod
  def from_files(cls, train_files: List[str], raw_feature_spec: Dict, config: TrainerConfig,
                 held_out_from: int) -> "Validation":
    """The train files' examples labelled from `held_out_from` on, against the files' labels."""
    def read(**filters) -> tf.data.Dataset:
      return make_dataset(train_files, raw_feature_spec, config, config.batch_size,
                          shuffle=False, repeat=False, fixed_history=False, **filters)
    return cls(read(held_out_from=held_out_from, held_out=True, pseudo_context=False),
               read(held_out_from=held_out_from, held_out=True), label_catalog(read()),
               label_counts(read(held_out_from=held_out_from)))

  def recall(self, model: tf.keras.Model) -> Optional[float]:
    """Mean of the held-out Recall@100 with logged context and without; None if no examples."""
    if self._outranked is None or self._outranked[0] is not model:  # traced for one model
      self._outranked = (model, tf.function(lambda *args: _outranked(model, *args)))
    items = model.embed_items(self.candidates)
    keys = category_keys.primary_keys(self.candidates[f.ITEM_CATEGORIES],
                                      self.candidates[f.ITEM_CONFIDENCES])
    recalls = [self._recall(examples, blank, items, keys) for examples, blank in self.asked]
    recalls = [r for r in recalls if r is not None]
    return sum(recalls) / len(recalls) if recalls else None

  def _recall(self, examples: tf.data.Dataset, blank: bool, items: tf.Tensor,
              keys: tf.Tensor) -> Optional[float]:
    hits, count = 0, 0
    for batch in examples:
      features = _without_context(batch) if blank else batch
      outranked = tf.zeros([tf.shape(features[f.LABEL_ITEM_ID])[0]], tf.int32)
      for start in range(0, int(items.shape[0]), CANDIDATE_BLOCK):
        block = slice(start, start + CANDIDATE_BLOCK)
        outranked += self._outranked[1](features, items[block], keys[block])
      hits += int(tf.reduce_sum(tf.cast(_hits(features, outranked), tf.int32)))
      count += int(outranked.shape[0])
    return hits / count if count else None


def _hits(features: Dict[str, tf.Tensor], outranked: tf.Tensor) -> tf.Tensor:
  """Whether each label is in the top 100 as served: the session's viewed items are pinned first
  (request_context.pinned_items), so the label is a hit among them, and each takes one of the
  other labels' slots."""
  viewed = features[f.CONTEXT_ITEM_ID]  # [B, S]
  present = viewed != ""
  same = tf.logical_and(tf.equal(viewed[:, :, tf.newaxis], viewed[:, tf.newaxis, :]),
                        present[:, tf.newaxis, :])
  distinct = first_occurrences(same, present)
  pinned = tf.reduce_any(tf.logical_and(present, tf.equal(
      viewed, features[f.LABEL_ITEM_ID][:, tf.newaxis])), axis=1)
  slots = RECALL_AT - tf.reduce_sum(tf.cast(distinct, tf.int32), axis=1)
  return tf.logical_or(pinned, outranked < slots)


def _bounded(examples: tf.data.Dataset) -> tf.data.Dataset:
  """The first batches of `examples`, about MAX_EXAMPLES examples."""
  batches = examples.take(1).reduce(0, lambda _, batch: tf.shape(batch[f.LABEL_ITEM_ID])[0])
  return examples.take(-(-MAX_EXAMPLES // max(int(batches), 1))).cache()


def _outranked(model: tf.keras.Model, features: Dict[str, tf.Tensor], items: tf.Tensor,
               item_keys: tf.Tensor) -> tf.Tensor:
  """Per example, the candidates scored above its label (the label itself is not)."""
  users = model.user_embedding(features)
  label = {f.ITEM_ID: features[f.LABEL_ITEM_ID], f.ITEM_CATEGORIES: features[f.LABEL_CATEGORIES],
           f.ITEM_CONFIDENCES: features[f.LABEL_CONFIDENCES]}
  label_keys = category_keys.primary_keys(label[f.ITEM_CATEGORIES], label[f.ITEM_CONFIDENCES])
  keys, weights = users[f.BOOST_KEYS], users[f.BOOST_WEIGHTS]
  label_score = (tf.reduce_sum(users[f.USER_EMBEDDING] * model.embed_items(label), axis=1)
                 + tf.linalg.diag_part(batch_boosts(keys, weights, label_keys)))
  scores = (tf.matmul(users[f.USER_EMBEDDING], items, transpose_b=True)
            + batch_boosts(keys, weights, item_keys))
  margin = 1e-5 * (1.0 + tf.abs(label_score))  # the label's own row, rounded differently
  return tf.reduce_sum(tf.cast(scores > (label_score + margin)[:, tf.newaxis], tf.int32), axis=1)
