"""The context head's interface and the request inputs every implementation takes."""
import abc
import dataclasses
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

from ctxrec.components import request_context
from ctxrec.components.request_context import Context
from ctxrec.trainer.exported_model import CONTEXT_FEATURES
from ctxrec.trainer.exported_model import session_widths
from ctxrec.transform import features as f

Inputs = Dict[str, np.ndarray]  # raw `context_head` inputs, padded as the signature declares
OUTPUTS = (f.USER_EMBEDDING, f.BOOST_KEYS, f.BOOST_WEIGHTS)


@dataclasses.dataclass(frozen=True)
class HeadOutput:
  """What `context_head` answers for a batch: user embeddings and their category boosts (none,
  [n, 0], for a model without them)."""
  embeddings: np.ndarray  # [n, d] float32
  boost_keys: np.ndarray  # [n, S] int64 category keys (transform/category_keys.py)
  boost_weights: np.ndarray  # [n, S] float32, in score units

  @classmethod
  def from_outputs(cls, outputs: Mapping[str, np.ndarray]) -> "HeadOutput":
    embeddings = np.asarray(outputs[f.USER_EMBEDDING], np.float32)
    empty = np.zeros((len(embeddings), 0))
    return cls(embeddings, np.asarray(outputs.get(f.BOOST_KEYS, empty), np.int64),
               np.asarray(outputs.get(f.BOOST_WEIGHTS, empty), np.float32))

  def finite_rows(self) -> np.ndarray:
    """[n] bool: rows whose embedding and boost weights are all finite."""
    return (np.isfinite(self.embeddings).all(axis=1)
            & np.isfinite(self.boost_weights).all(axis=1))

  def replace_rows(self, rows: np.ndarray, other: "HeadOutput") -> "HeadOutput":
    """This output with `rows` taken from `other` (an answer for those rows only)."""
    parts = []
    for mine, theirs in zip((self.embeddings, self.boost_keys, self.boost_weights),
                            (other.embeddings, other.boost_keys, other.boost_weights)):
      merged = np.array(mine)
      merged[rows] = theirs
      parts.append(merged)
    return HeadOutput(*parts)


class HeadError(RuntimeError):
  """The head could not answer: the service answers with the in-process head instead."""


@dataclasses.dataclass(frozen=True)
class HeadSignature:
  """The `context_head` inputs of one model: names, dtypes and widths."""
  specs: Mapping[str, tf.TensorSpec]

  @property
  def dimension(self) -> int:
    return int(self.specs[f.HISTORY_STATE].shape[1])

  @property
  def session_widths(self) -> Tuple[int, int]:
    """(views, categories per view) the context inputs take; (0, 0) for a model without."""
    return session_widths(self.specs)

  @property
  def session_views(self) -> int:
    """The views of a session the model reads, which pinning follows as the evaluator does;
    the default session's for a model without context inputs."""
    return self.session_widths[0] or f.DEFAULT_SESSION_VIEWS

  def inputs(self, states: np.ndarray, contexts: Sequence[Context],
             demographics: Sequence[Mapping[str, str]]) -> Inputs:
    """The signature's inputs for a batch of states, contexts and demographics."""
    states = np.asarray(states, dtype=np.float32).reshape(len(contexts), -1)
    return {f.HISTORY_STATE: states, **context_inputs(self.specs, contexts, demographics)}


def context_inputs(specs: Mapping[str, tf.TensorSpec], contexts: Sequence[Context],
                   demographics: Sequence[Mapping[str, str]]) -> Inputs:
  """The context and demographic inputs a signature declares, for a batch: the sessions as the
  eval requests have them (request_context.context_arrays at the declared widths); a
  demographic a request leaves out is "", the model's unknown value."""
  views, categories = session_widths(specs)
  arrays = request_context.context_arrays(contexts, views, categories) if views else {}
  out = {name: _as_declared(arrays[name], specs[name]) for name in CONTEXT_FEATURES
         if name in specs}
  for name, spec in specs.items():
    if name not in CONTEXT_FEATURES and spec.shape.rank == 1 and spec.dtype == tf.string:
      out[name] = np.array([d.get(name, "") for d in demographics], dtype=object)
  return out


def _as_declared(value: np.ndarray, spec: tf.TensorSpec) -> np.ndarray:
  """In the declared dtype: TF Serving refuses a gRPC tensor of another dtype (int32 ages, say)."""
  return value if spec.dtype == tf.string else value.astype(spec.dtype.as_numpy_dtype, copy=False)


class ContextHead(abc.ABC):
  """Answers `context_head` for one model version."""

  def __init__(self, model_version: str):
    self.model_version = str(model_version)

  @abc.abstractmethod
  def embed(self, inputs: Inputs) -> HeadOutput:
    """User embeddings and boosts for a batch of inputs, or HeadError."""

  @property
  def name(self) -> str:
    return type(self).__name__

  def close(self) -> None:
    """Releases connections."""
