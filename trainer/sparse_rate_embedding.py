"""An embedding whose rows learn `rate` times faster than Adam's step: rows seen a few times
per pass (most items) move by about rate * learning_rate per step instead of staying near zero."""
import tensorflow as tf


class SparseRateEmbedding(tf.keras.layers.Embedding):
  """Embedding looked up as `rate * table[ids]`.

  Adam moves each parameter by about the learning rate per step whatever its gradient's scale,
  so a row updated only on the few steps its item appears in barely leaves its initial value
  in one pass. Scaling the lookup scales every row's step by `rate` while the dense layers keep
  the shared learning rate. The exported graph is a lookup and a multiply (stock ops).
  """

  def __init__(self, input_dim: int, output_dim: int, rate: float = 1.0, **kwargs):
    if not rate > 0:
      raise ValueError(f"an embedding's rate must be > 0, got {rate}")
    super().__init__(input_dim, output_dim, **kwargs)
    self.rate = float(rate)

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    rows = super().call(inputs)
    return rows if self.rate == 1.0 else rows * self.rate  # rate 1: the plain lookup's graph

  def get_config(self):
    return {**super().get_config(), "rate": self.rate}
