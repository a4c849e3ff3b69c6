"""Calls the exported signatures on batches of raw features: the catalog and eval examples."""
import dataclasses
from typing import Dict, Iterator, List, Mapping, Sequence, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf

from ctxrec.components import request_context
from ctxrec.components import session_features
from ctxrec.components.request_context import Context
from ctxrec.components.user_history import History
from ctxrec.transform import features as f

# The signatures' context inputs (request_context.context_arrays).
CONTEXT_FEATURES = (f.CONTEXT_ITEM_ID, f.CONTEXT_AGE_SECONDS, f.CONTEXT_CATEGORIES,
                    f.CONTEXT_CONFIDENCES)


def signature(model, name: str, model_dir: str):
  """The model's signature `name`, or a ValueError saying which model lacks it and what it has."""
  if name not in model.signatures:
    raise ValueError(
        f"{model_dir}: the SavedModel has no {name!r} signature (it has "
        f"{', '.join(sorted(model.signatures)) or 'none'}); push a model exported by ctxrec's "
        f"Trainer")
  return model.signatures[name]


def signature_inputs(function) -> Dict[str, tf.TensorSpec]:
  return dict(function.structured_input_signature[1])


def call(function, inputs: Mapping[str, tf.Tensor]) -> Dict[str, np.ndarray]:
  """Calls a signature with the inputs it declares (extra inputs are ignored)."""
  declared = signature_inputs(function)
  outputs = function(**{name: tf.convert_to_tensor(inputs[name], spec.dtype)
                        for name, spec in declared.items()})
  return {name: value.numpy() for name, value in outputs.items()}


def _padded(lists, width: int, fill, dtype=None) -> np.ndarray:
  dtype = dtype or (object if isinstance(fill, str) else np.float32)
  out = np.full((len(lists), width), fill, dtype=dtype)
  for row, values in enumerate(lists):
    values = list(values)[:width]
    out[row, :len(values)] = values
  return out


def catalog_inputs(items: pd.DataFrame, max_categories: int) -> Dict[str, np.ndarray]:
  """embed_items inputs for an items table (item_id, categories, confidences)."""
  return {f.ITEM_ID: items[f.ITEM_ID].astype(str).to_numpy(dtype=object),
          f.ITEM_CATEGORIES: _padded(items[f.CATEGORIES], max_categories, ""),
          f.ITEM_CONFIDENCES: _padded(items[f.CONFIDENCES], max_categories, 0.0)}


def item_categories(signatures) -> int:
  """How many categories per item the model's embed_items signature takes."""
  spec = signature_inputs(signatures[f.SIGNATURE_EMBED_ITEMS])
  return int(spec[f.ITEM_CATEGORIES].shape[1])


def embed_catalog(signatures, items: pd.DataFrame, batch_size: int = 4096) -> np.ndarray:
  """Item embeddings [len(items), d] of an items table (item_id, categories, confidences), in
  table order; an item's categories beyond the model's width are dropped (primary first)."""
  inputs = catalog_inputs(items, item_categories(signatures))
  return embed(signatures[f.SIGNATURE_EMBED_ITEMS], inputs, f.ITEM_EMBEDDING, batch_size)


def history_batch(histories: Sequence[History], width: int) -> Dict[str, np.ndarray]:
  """encode_history inputs for histories: left-aligned, most recent last, "" / 0 padding."""
  return {f.HISTORY_ITEM_IDS: _padded([h.item_ids for h in histories], width, ""),
          f.HISTORY_CATEGORIES: _padded([h.categories for h in histories], width, ""),
          f.HISTORY_AGE_DAYS: _padded([h.age_days for h in histories], width, 0, np.int64)}


def batches(inputs: Mapping[str, np.ndarray], size: int) -> Iterator[Dict[str, np.ndarray]]:
  total = len(next(iter(inputs.values())))
  for start in range(0, total, size):
    yield {name: value[start:start + size] for name, value in inputs.items()}


def embed(function, inputs: Mapping[str, np.ndarray], output: str,
          batch_size: int = 4096) -> np.ndarray:
  """Runs a signature over all rows in batches and stacks one output."""
  return np.concatenate([call(function, batch)[output] for batch in batches(inputs, batch_size)])


def outputs(function, inputs: Mapping[str, np.ndarray],
            batch_size: int = 4096) -> Dict[str, np.ndarray]:
  """Every output of a signature over all rows, in batches (e.g. the user embedding and its
  boosts)."""
  parts = [call(function, batch) for batch in batches(inputs, batch_size)]
  return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def without_context(inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """The same requests with an empty context (the no_context evaluation mode)."""
  out = dict(inputs)
  for name in CONTEXT_FEATURES:
    if name in out:
      out[name] = np.zeros_like(out[name]) if out[name].dtype != object else np.full_like(
          out[name], "")
  return out


def session_widths(specs: Mapping[str, tf.TensorSpec]) -> Tuple[int, int]:
  """(S, K) of a signature's context inputs (signature_inputs): views from CONTEXT_ITEM_ID
  [n, S], categories per view from CONTEXT_CATEGORIES [n, S, K]; (0, 0) without them."""
  names = specs.get(f.CONTEXT_CATEGORIES)
  if names is None:
    return 0, 0
  return int(specs.get(f.CONTEXT_ITEM_ID, names).shape[1]), int(names.shape[2])


@dataclasses.dataclass
class EvalRequests:
  """Eval examples as serving requests, with what identifies each conversion."""
  inputs: Dict[str, np.ndarray]  # raw, padded as the serving signature declares
  labels: np.ndarray  # label item ids
  user_ids: np.ndarray
  timestamps: np.ndarray
  contexts: Tuple[Context, ...]  # each example's whole logged session

  @property
  def has_context(self) -> np.ndarray:
    return np.array([not c.empty for c in self.contexts], bool)


def _read_columns(example_files: List[str], spec: Dict[str, tf.io.VarLenFeature]) -> Dict[str, list]:
  columns: Dict[str, list] = {n: [] for n in spec}
  for records in tf.data.TFRecordDataset(example_files, compression_type="GZIP").batch(1024):
    parsed = tf.io.parse_example(records, spec)
    for name in spec:
      columns[name].extend(tf.RaggedTensor.from_sparse(parsed[name]).to_list())
  return columns


def _as_input(values: list, spec: tf.TensorSpec, name: str) -> np.ndarray:
  if spec.shape.rank == 1:
    return np.array([v[0].decode() if v else "" for v in values], dtype=object)
  width = spec.shape[1]
  keep_last = name in (f.HISTORY_ITEM_IDS, f.HISTORY_CATEGORIES, f.HISTORY_AGE_DAYS)
  values = [v[-width:] if keep_last else v[:width] for v in values]
  if spec.dtype == tf.string:
    return _padded([[x.decode() for x in v] for v in values], width, "")
  return _padded(values, width, 0.0).astype(spec.dtype.as_numpy_dtype)


_DTYPES = {f.HISTORY_AGE_DAYS: tf.int64, f.CONTEXT_CONFIDENCES: tf.float32,
           f.LABEL_TIMESTAMP: tf.int64, f.CONTEXT_AGE_SECONDS: tf.int64,
           f.CONTEXT_CATEGORY_COUNTS: tf.int64}


def example_requests(example_files: List[str], signature) -> EvalRequests:
  """Reads eval examples into the inputs of `signature` (padded to its declared widths)."""
  specs = signature_inputs(signature)
  declared = {n: s for n, s in specs.items() if n != f.HISTORY_STATE}
  session = session_features.SESSION_FEATURES
  names = ([n for n in declared if n not in CONTEXT_FEATURES] + list(session)
           + [f.LABEL_ITEM_ID, f.USER_ID, f.LABEL_TIMESTAMP])
  columns = _read_columns(example_files, {
      n: tf.io.VarLenFeature(_DTYPES.get(n, tf.string)) for n in names})
  contexts = tuple(session_features.session_of(*(columns[n][row] for n in session))
                   for row in range(len(columns[f.LABEL_ITEM_ID])))
  inputs = {n: _as_input(columns[n], spec, n) for n, spec in declared.items()
            if n not in CONTEXT_FEATURES}
  views, categories = session_widths(specs)
  if views:
    inputs.update(request_context.context_arrays(contexts, views, categories))
  first = lambda name: [v[0] for v in columns[name]]  # noqa: E731
  return EvalRequests(
      inputs=inputs,
      labels=np.array([v.decode() for v in first(f.LABEL_ITEM_ID)], dtype=object),
      user_ids=np.array([v.decode() for v in first(f.USER_ID)], dtype=object),
      timestamps=np.array(first(f.LABEL_TIMESTAMP), dtype=np.int64), contexts=contexts)
