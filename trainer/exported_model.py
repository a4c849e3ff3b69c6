"""Calls the exported signatures on batches of raw features: the catalog and eval examples."""
from typing import Dict, Iterator, List, Mapping, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf

from ctxrec.transform import features as f

CONTEXT_FEATURES = (f.CONTEXT_ITEM_ID, f.CONTEXT_CATEGORIES, f.CONTEXT_CONFIDENCES)


def signature_inputs(function) -> Dict[str, tf.TensorSpec]:
  return dict(function.structured_input_signature[1])


def call(function, inputs: Mapping[str, tf.Tensor]) -> Dict[str, np.ndarray]:
  """Calls a signature with the inputs it declares (extra inputs are ignored)."""
  declared = signature_inputs(function)
  outputs = function(**{name: tf.convert_to_tensor(inputs[name], spec.dtype)
                        for name, spec in declared.items()})
  return {name: value.numpy() for name, value in outputs.items()}


def _padded(lists, width: int, fill) -> np.ndarray:
  out = np.full((len(lists), width), fill, dtype=object if isinstance(fill, str) else np.float32)
  for row, values in enumerate(lists):
    values = list(values)[:width]
    out[row, :len(values)] = values
  return out


def catalog_inputs(items: pd.DataFrame, max_categories: int) -> Dict[str, np.ndarray]:
  """embed_items inputs for an items table (item_id, categories, confidences)."""
  return {f.ITEM_ID: items[f.ITEM_ID].astype(str).to_numpy(dtype=object),
          f.ITEM_CATEGORIES: _padded(items[f.CATEGORIES], max_categories, ""),
          f.ITEM_CONFIDENCES: _padded(items[f.CONFIDENCES], max_categories, 0.0)}


def batches(inputs: Mapping[str, np.ndarray], size: int) -> Iterator[Dict[str, np.ndarray]]:
  total = len(next(iter(inputs.values())))
  for start in range(0, total, size):
    yield {name: value[start:start + size] for name, value in inputs.items()}


def embed(function, inputs: Mapping[str, np.ndarray], output: str,
          batch_size: int = 4096) -> np.ndarray:
  """Runs a signature over all rows in batches and stacks one output."""
  return np.concatenate([call(function, batch)[output] for batch in batches(inputs, batch_size)])


def without_context(inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """The same requests with an empty context (the no_context evaluation mode)."""
  out = dict(inputs)
  for name in CONTEXT_FEATURES:
    if name in out:
      out[name] = np.zeros_like(out[name]) if out[name].dtype != object else np.full_like(
          out[name], "")
  return out


def example_inputs(example_files: List[str], signature, history_length: int,
                   max_categories: int) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
  """Raw serving inputs (padded as the signature wants) and label item ids of eval examples."""
  declared = signature_inputs(signature)
  names = [n for n in declared if n != f.HISTORY_STATE] + [f.LABEL_ITEM_ID]
  spec = {n: tf.io.VarLenFeature(tf.int64 if n == f.HISTORY_AGE_DAYS else (
      tf.float32 if n == f.CONTEXT_CONFIDENCES else tf.string)) for n in names}
  columns: Dict[str, list] = {n: [] for n in names}
  dataset = tf.data.TFRecordDataset(example_files, compression_type="GZIP").batch(1024)
  for records in dataset:
    parsed = tf.io.parse_example(records, spec)
    for name in names:
      columns[name].extend(v.numpy().tolist() for v in tf.RaggedTensor.from_sparse(parsed[name]))
  inputs = {}
  for name, spec_in in declared.items():
    if name == f.HISTORY_STATE:
      continue
    values = columns[name]
    if spec_in.shape.rank == 1:
      inputs[name] = np.array([v[0].decode() if v else "" for v in values], dtype=object)
      continue
    width = spec_in.shape[1]
    keep_last = name in (f.HISTORY_ITEM_IDS, f.HISTORY_CATEGORIES, f.HISTORY_AGE_DAYS)
    values = [v[-width:] if keep_last else v[:width] for v in values]
    if spec_in.dtype == tf.string:
      inputs[name] = _padded([[x.decode() for x in v] for v in values], width, "")
    else:
      inputs[name] = _padded(values, width, 0.0).astype(spec_in.dtype.as_numpy_dtype)
  labels = np.array([v[0].decode() for v in columns[f.LABEL_ITEM_ID]], dtype=object)
  return inputs, labels
