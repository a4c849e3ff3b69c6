"""Runs the exported `encode_history` signature on batches of histories, in Beam and outside it.

Beam's stock TensorFlow model handlers load models through Keras 3, which cannot read this
SavedModel under TF 2.16; this handler loads it with `tf.saved_model.load` (once per worker,
through RunInference's shared model manager) and calls the signature on stacked inputs.
"""
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from ctxrec.components.user_history import History
from ctxrec.trainer import exported_model
from ctxrec.transform import features as f

METRICS_NAMESPACE = "ctxrec.history_state_inferrer"
EMPTY_HISTORY = History((), (), ())


class EncodeHistory:
  """A loaded model's `encode_history`: histories in, history states [n, dimension] out."""

  def __init__(self, model_dir: str):
    self._model = tf.saved_model.load(model_dir)  # keeps the signature's variables alive
    self._function = exported_model.signature(self._model, f.SIGNATURE_ENCODE_HISTORY, model_dir)
    inputs = exported_model.signature_inputs(self._function)
    self.history_length = int(inputs[f.HISTORY_ITEM_IDS].shape[1])
    self.dimension = int(self._function.structured_outputs[f.HISTORY_STATE].shape[-1])

  def __call__(self, histories: Sequence[History]) -> np.ndarray:
    inputs = exported_model.history_batch(histories, self.history_length)
    return exported_model.call(self._function, inputs)[f.HISTORY_STATE]


class EncodeHistoryModelHandler(ModelHandler[History, PredictionResult, EncodeHistory]):
  """A RunInference handler of `encode_history`; wrap it in KeyedModelHandler to carry user ids."""

  def __init__(self, model_dir: str, min_batch_size: int, max_batch_size: int):
    super().__init__()
    self._model_dir = model_dir
    self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}

  def load_model(self) -> EncodeHistory:
    return EncodeHistory(self._model_dir)

  def run_inference(self, batch: Sequence[History], model: EncodeHistory,
                    inference_args: Optional[Dict[str, Any]] = None
                    ) -> Iterable[PredictionResult]:
    return [PredictionResult(history, state) for history, state in zip(batch, model(batch))]

  def get_num_bytes(self, batch: Sequence[History]) -> int:
    return sum(16 * len(history) for history in batch)  # cheap estimate: no pickling per batch

  def batch_elements_kwargs(self) -> Mapping[str, Any]:
    return self._batching

  def get_metrics_namespace(self) -> str:
    return METRICS_NAMESPACE
