"""Reads examples into the dense, padded raw features every model entry point takes."""
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from ctxrec.trainer.config import TrainerConfig
from ctxrec.transform import features as f

DEMOGRAPHIC_PREFIX = f.demographic_feature("")
VALIDATION_SHARE = 0.1  # the train examples, latest first, held out of training to validate it


def demographic_features(raw_feature_spec: Dict[str, tf.io.VarLenFeature]) -> List[str]:
  """The demo_* features the data carries, in a stable order."""
  return sorted(name for name in raw_feature_spec if name.startswith(DEMOGRAPHIC_PREFIX))


def _pad(sparse: tf.SparseTensor, width: int, default, keep_last: bool = False,
         fixed: bool = True) -> tf.Tensor:
  """Dense [B, width], or [B, <= width] (the longest row) when not `fixed`."""
  ragged = tf.RaggedTensor.from_sparse(sparse)
  ragged = ragged[:, -width:] if keep_last else ragged[:, :width]
  return ragged.to_tensor(default_value=default, shape=[None, width if fixed else None])


def _session(parsed: Dict[str, tf.SparseTensor], name: str, views: int, width: int,
             default) -> tf.Tensor:
  """Dense [B, views, width] of a per-view list feature (categories or confidences), split into
  views by CONTEXT_CATEGORY_COUNTS (session_features)."""
  counts = tf.RaggedTensor.from_sparse(parsed[f.CONTEXT_CATEGORY_COUNTS])
  flat = tf.RaggedTensor.from_sparse(parsed[name]).values
  per_view = tf.RaggedTensor.from_row_lengths(flat, counts.values)
  nested = tf.RaggedTensor.from_row_lengths(per_view, counts.row_lengths())
  return nested[:, :views, :width].to_tensor(default_value=default, shape=[None, views, width])


def dense_features(parsed: Dict[str, tf.SparseTensor], config: TrainerConfig,
                   fixed_history: bool = True) -> Dict[str, tf.Tensor]:
  """Left-aligned, ""/0-padded tensors: histories [B, L] (most recent last), categories [B, K],
  the session's views [B, S] and their categories [B, S, K] (most recent view first).

  With `fixed_history=False` histories are only as wide as the batch's longest (faster training).
  """
  length, k, views = config.history_length, config.max_categories, config.session_views
  dense = {
      f.HISTORY_ITEM_IDS: _pad(parsed[f.HISTORY_ITEM_IDS], length, "", True, fixed_history),
      f.HISTORY_CATEGORIES: _pad(parsed[f.HISTORY_CATEGORIES], length, "", True, fixed_history),
      f.HISTORY_AGE_DAYS: _pad(parsed[f.HISTORY_AGE_DAYS], length, tf.constant(0, tf.int64),
                               True, fixed_history),
      f.LABEL_ITEM_ID: _pad(parsed[f.LABEL_ITEM_ID], 1, "")[:, 0],
      f.LABEL_CATEGORIES: _pad(parsed[f.LABEL_CATEGORIES], k, ""),
      f.LABEL_CONFIDENCES: _pad(parsed[f.LABEL_CONFIDENCES], k, 0.0),
      f.CONTEXT_ITEM_ID: _pad(parsed[f.CONTEXT_ITEM_ID], views, ""),
      f.CONTEXT_AGE_SECONDS: _pad(parsed[f.CONTEXT_AGE_SECONDS], views,
                                  tf.constant(0, tf.int64)),
      f.CONTEXT_CATEGORIES: _session(parsed, f.CONTEXT_CATEGORIES, views, k, ""),
      f.CONTEXT_CONFIDENCES: _session(parsed, f.CONTEXT_CONFIDENCES, views, k, 0.0),
  }
  for name in parsed:
    if name.startswith(DEMOGRAPHIC_PREFIX):
      dense[name] = _pad(parsed[name], 1, "")[:, 0]
  return dense


def _files(file_pattern: List[str]) -> List[str]:
  files = sorted(path for pattern in file_pattern for path in tf.io.gfile.glob(pattern))
  if not files:
    raise ValueError(f"no example files match {file_pattern}")
  return files


def count_examples(file_pattern: List[str], limit: int) -> int:
  """Examples in GZIP TFRecords, counted up to `limit` (reading stops there)."""
  dataset = tf.data.TFRecordDataset(_files(file_pattern), compression_type="GZIP").take(limit)
  return int(dataset.reduce(0, lambda count, _: count + 1))


def _label_time(record: tf.Tensor) -> tf.Tensor:
  """A serialized example's label timestamp."""
  parsed = tf.io.parse_single_example(record, {f.LABEL_TIMESTAMP: tf.io.VarLenFeature(tf.int64)})
  return tf.reduce_max(tf.sparse.to_dense(parsed[f.LABEL_TIMESTAMP]))


def validation_cutoff(file_pattern: List[str]) -> Optional[int]:
  """The label time from which the latest VALIDATION_SHARE of examples is held out (the eval
  split is the log's future, so the Trainer validates on the train split's own future); None
  when the labels' times cannot split them."""
  dataset = tf.data.TFRecordDataset(_files(file_pattern), compression_type="GZIP")
  times = np.fromiter(dataset.map(_label_time).as_numpy_iterator(), np.int64)
  if times.size == 0:
    return None
  cutoff = int(np.quantile(times, 1.0 - VALIDATION_SHARE, method="higher"))
  return cutoff if times.min() < cutoff else None


def _pseudo_context(record: tf.Tensor) -> tf.Tensor:
  """Whether a serialized example's context was derived from its label (f.PSEUDO_CONTEXT)."""
  flag = tf.io.parse_single_example(record, {f.PSEUDO_CONTEXT: tf.io.VarLenFeature(tf.int64)})
  return tf.reduce_any(tf.sparse.to_dense(flag[f.PSEUDO_CONTEXT]) > 0)


def make_dataset(file_pattern: List[str], raw_feature_spec: Dict, config: TrainerConfig,
                 batch_size: int, shuffle: bool, repeat: bool, fixed_history: bool = True,
                 held_out_from: Optional[int] = None, held_out: bool = False,
                 pseudo_context: Optional[bool] = None) -> tf.data.Dataset:
  """Batches of dense raw features from GZIP TFRecords of tf.Examples. With `held_out_from`
  (validation_cutoff) only the examples labelled before it, or from it on if `held_out`;
  `pseudo_context` True keeps only the examples whose context was derived from their label,
  False only the others, None every example."""
  dataset = tf.data.TFRecordDataset(_files(file_pattern), compression_type="GZIP")
  if held_out_from is not None:
    dataset = dataset.filter(
        lambda record: tf.equal(_label_time(record) >= held_out_from, held_out))
  if pseudo_context is not None:
    dataset = dataset.filter(lambda record: tf.equal(_pseudo_context(record), pseudo_context))
  if shuffle:
    dataset = dataset.shuffle(config.shuffle_buffer, seed=config.seed,
                              reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  dataset = dataset.batch(batch_size, drop_remainder=repeat)
  dataset = dataset.map(lambda records: dense_features(
      tf.io.parse_example(records, raw_feature_spec), config, fixed_history),
      num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)
