"""The context layer: what the user is looking at now, dropped as a whole per training example."""
import tensorflow as tf

from ctxrec.trainer.config import MODE_ITEM, TrainerConfig


def weighted_category_bag(category_embedding, category_ids, confidences) -> tf.Tensor:
  """Confidence-weighted mean of category embeddings (zero when there are no categories)."""
  weights = confidences * tf.cast(category_ids > 0, confidences.dtype)
  total = tf.reduce_sum(weights, axis=1, keepdims=True)
  bag = tf.reduce_sum(category_embedding(category_ids) * weights[..., tf.newaxis], axis=1)
  return bag / tf.maximum(total, 1e-6)


class ContextLayer(tf.keras.layers.Layer):
  """Embeds the context's categories (and its item in `item` mode) plus a has-context flag.

  In training the whole context is zeroed per example with probability `context_dropout`,
  so the model keeps working from history alone when a request carries no context.
  """

  def __init__(self, config: TrainerConfig, category_embedding, item_embedding=None, **kwargs):
    super().__init__(**kwargs)
    self._rate = config.context_dropout
    self._seed = config.seed
    self.category_embedding = category_embedding
    self.item_embedding = item_embedding if config.context_mode == MODE_ITEM else None

  def call(self, category_ids, confidences, item_ids=None, training=False):
    vector = weighted_category_bag(self.category_embedding, category_ids, confidences)
    present = tf.reduce_any(category_ids > 0, axis=1, keepdims=True)
    if self.item_embedding is not None:
      has_item = tf.expand_dims(item_ids[:, 0] > 0, axis=1)  # [B, 1] whatever the width
      vector += self.item_embedding(item_ids[:, 0]) * tf.cast(has_item, vector.dtype)
      present = tf.logical_or(present, has_item)
    flag = tf.cast(present, vector.dtype)
    if training and self._rate > 0:
      keep = tf.cast(tf.random.uniform(tf.shape(flag)) >= self._rate, vector.dtype)
      vector, flag = vector * keep, flag * keep
    return tf.concat([vector, flag], axis=1)
