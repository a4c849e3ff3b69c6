"""The `context_head` signature of a pushed SavedModel, called in this process."""
import tensorflow as tf

from ctxrec.serving import model_versions
from ctxrec.serving.head.head import ContextHead, HeadError, HeadOutput, HeadSignature, Inputs
from ctxrec.trainer import exported_model
from ctxrec.transform import features as f


def load_model(version_dir: str):
  """The SavedModel of one pushed version; its lookup tables are initialized here, once."""
  return tf.saved_model.load(version_dir)


class InProcessHead(ContextHead):
  """Calls the signature's concrete function: no per-call tracing, tables built at load."""

  def __init__(self, version_dir: str, model=None):
    super().__init__(model_versions.version_of(version_dir))
    self.model = model if model is not None else load_model(version_dir)
    self._function = exported_model.signature(self.model, f.SIGNATURE_CONTEXT_HEAD, version_dir)
    self.signature = HeadSignature(exported_model.signature_inputs(self._function))

  def embed(self, inputs: Inputs) -> HeadOutput:
    try:
      return HeadOutput.from_outputs(exported_model.call(self._function, inputs))
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
      raise HeadError(f"context_head of model {self.model_version}: {exc}")
