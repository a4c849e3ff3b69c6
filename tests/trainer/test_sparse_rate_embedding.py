import numpy as np
import pytest
import tensorflow as tf

from ctxrec.trainer.sparse_rate_embedding import SparseRateEmbedding


def _row_step(layer: tf.keras.layers.Embedding) -> float:
  """How far one Adam step moves the looked-up row 3 (the other rows get no gradient)."""
  ids = tf.constant([3])
  before = layer(ids).numpy()
  optimizer = tf.keras.optimizers.Adam(1e-2)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(layer(ids) * tf.constant([[1.0, -2.0]]))
  optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_variables),
                                layer.trainable_variables))
  return float(np.abs(layer(ids).numpy() - before).max())


def test_lookup_is_rate_times_the_table():
  layer = SparseRateEmbedding(5, 2, rate=4.0, embeddings_initializer="ones")
  np.testing.assert_allclose(layer(tf.constant([0, 4])).numpy(), np.full([2, 2], 4.0))


def test_a_row_steps_rate_times_the_learning_rate():
  plain = _row_step(tf.keras.layers.Embedding(5, 2, embeddings_initializer="zeros"))
  fast = _row_step(SparseRateEmbedding(5, 2, rate=10.0, embeddings_initializer="zeros"))
  assert plain == pytest.approx(1e-2, rel=1e-3)
  assert fast == pytest.approx(10 * plain, rel=1e-3)


def test_config_round_trips_the_rate():
  layer = SparseRateEmbedding(5, 2, rate=3.0)
  assert SparseRateEmbedding.from_config(layer.get_config()).rate == 3.0


def test_rejects_a_rate_that_is_not_positive():
  with pytest.raises(ValueError, match="rate must be > 0"):
    SparseRateEmbedding(5, 2, rate=0.0)
