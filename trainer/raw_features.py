"""Applies the tf.Transform graph inside the model, so every signature takes raw strings."""
from typing import Dict

import tensorflow as tf
import tensorflow_transform as tft

PADDING_ID = 0  # the id of "" (padding); vocabulary and OOV ids start at 1


class RawFeatureTransform(tf.keras.layers.Layer):
  """Maps dense, ""-padded raw string features [batch, width] to dense ids (0 = padding).

  Features the caller does not pass are fed to the Transform graph as empty, so each signature
  needs only its own inputs.
  """

  def __init__(self, tft_output: tft.TFTransformOutput, **kwargs):
    super().__init__(trainable=False, **kwargs)
    self.tft_layer = tft_output.transform_features_layer()
    self._raw_spec = tft_output.raw_feature_spec()

  def call(self, raw: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    batch = tf.shape(next(iter(raw.values())))[0]
    inputs = {name: self._sparse(raw.get(name), spec.dtype, batch)
              for name, spec in self._raw_spec.items()}
    transformed = self.tft_layer(inputs)
    return {name: self._dense(transformed[name], value)
            for name, value in raw.items() if value.dtype == tf.string}

  @staticmethod
  def _dense(ids: tf.SparseTensor, raw: tf.Tensor) -> tf.Tensor:
    """Dense ids shaped like the raw input: the Transform graph loses static widths, and a
    layer downstream (Dense) needs them."""
    dense = tf.sparse.to_dense(ids, default_value=-1) + 1
    dense.set_shape(raw.shape)
    return dense

  @staticmethod
  def _sparse(value, dtype, batch) -> tf.SparseTensor:
    if value is None or value.dtype != tf.string:
      return tf.SparseTensor(tf.zeros([0, 2], tf.int64), tf.zeros([0], dtype),
                             tf.stack([tf.cast(batch, tf.int64), tf.constant(0, tf.int64)]))
    return tf.sparse.from_dense(value)  # drops the "" padding, keeps positions
