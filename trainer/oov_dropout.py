"""OOV dropout: training shows the model ids it has never learned, as serving will."""
import tensorflow as tf


class OovDropout(tf.keras.layers.Layer):
  """In training, replaces a share of ids (0 = padding stays) by random out-of-vocabulary ids.

  Items added after training hash to the OOV rows of the item embedding; without this those rows
  are never trained and such an item's embedding is noise. The item tower and the context layer
  then learn to lean on categories when an id carries nothing.
  """

  def __init__(self, rate: float, first_oov_id: int, num_oov_ids: int, **kwargs):
    super().__init__(trainable=False, **kwargs)
    self._rate = rate
    self._first = first_oov_id
    self._count = num_oov_ids

  def call(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
    if not training or self._rate <= 0:
      return ids
    drop = tf.logical_and(tf.random.uniform(tf.shape(ids)) < self._rate, ids > 0)
    oov = self._first + tf.random.uniform(tf.shape(ids), 0, self._count, dtype=ids.dtype)
    return tf.where(drop, oov, ids)
