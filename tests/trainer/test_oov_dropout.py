"""OOV dropout replaces ids only in training, never padding, and only with OOV ids."""
import numpy as np
import tensorflow as tf

from ctxrec.trainer.oov_dropout import OovDropout


def test_training_replaces_about_the_rate_with_oov_ids_and_keeps_padding():
  tf.random.set_seed(0)
  ids = tf.constant(np.tile(np.array([[0, 1, 2, 3, 4, 5, 6, 7]], np.int64), (2000, 1)))
  layer = OovDropout(rate=0.2, first_oov_id=100, num_oov_ids=10)
  out = layer(ids, training=True).numpy()
  changed = out != ids.numpy()
  assert not changed[:, 0].any()  # padding stays padding
  assert abs(changed[:, 1:].mean() - 0.2) < 0.02
  assert ((out[changed] >= 100) & (out[changed] < 110)).all()
  assert len(np.unique(out[changed])) == 10  # every OOV row gets trained


def test_inference_and_zero_rate_leave_ids_alone():
  ids = tf.constant([[3, 4, 0]], tf.int64)
  assert (OovDropout(0.5, 100, 10)(ids, training=False).numpy() == ids.numpy()).all()
  assert (OovDropout(0.0, 100, 10)(ids, training=True).numpy() == ids.numpy()).all()
