"""The context layer: the session's recent views pooled into one vector, dropped as a whole per
training example."""
from typing import Optional

import tensorflow as tf

AGE_SCALE_SECONDS = 3600.0  # a view's age enters as log1p(age) / log1p(this): 1 at an hour


def weighted_category_bag(category_embedding, category_ids, confidences) -> tf.Tensor:
  """Confidence-weighted mean of category embeddings over the last axis ([..., K] ids ->
  [..., D]; zero where there are no categories)."""
  weights = confidences * tf.cast(category_ids > 0, confidences.dtype)
  total = tf.reduce_sum(weights, axis=-1, keepdims=True)
  bag = tf.reduce_sum(category_embedding(category_ids) * weights[..., tf.newaxis], axis=-2)
  return bag / tf.maximum(total, 1e-6)


class ContextLayer(tf.keras.layers.Layer):
  """Embeds each view (its categories, plus its item in item mode) and pools the session.

  Inputs: category ids and confidences [B, S, K], item ids [B, S] (read only with an
  `item_embedding`), view ages in seconds [B, S] and a query [B, Q] (the history). Output
  [B, 2D + 1]: the view being viewed now, the attention-pooled session (the query against each
  view and its age, plus a learned bias per position), and a has-context flag. In training the
  whole session is zeroed per example with probability `dropout`, so the model keeps working from
  history alone when a request carries no context.
  """

  def __init__(self, views: int, category_embedding: tf.keras.layers.Embedding,
               item_embedding: Optional[tf.keras.layers.Embedding] = None, dropout: float = 0.5,
               **kwargs):
    super().__init__(**kwargs)
    if views < 1:
      raise ValueError(f"a session has at least one view slot, got views={views}")
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"context dropout must be in [0, 1), got {dropout}")
    self._rate = dropout
    self.category_embedding = category_embedding
    self.item_embedding = item_embedding
    dim = category_embedding.output_dim
    self.query_projection = tf.keras.layers.Dense(dim, use_bias=False, name="session_query")
    self.key_projection = tf.keras.layers.Dense(dim, use_bias=False, name="session_key")
    self.position_bias = self.add_weight(name="position_bias", shape=[views],
                                         initializer="zeros")

  def call(self, category_ids, confidences, item_ids, ages, query, training=False):
    views = weighted_category_bag(self.category_embedding, category_ids, confidences)
    present = tf.reduce_any(category_ids > 0, axis=2)  # [B, S]
    if self.item_embedding is not None:
      has_item = item_ids > 0
      views += self.item_embedding(item_ids) * tf.cast(has_item, views.dtype)[..., tf.newaxis]
      present = tf.logical_or(present, has_item)
    mask = tf.cast(present, views.dtype)
    pooled = self._pool(views, mask, ages, query)
    flag = tf.reduce_max(mask, axis=1, keepdims=True)
    if training and self._rate > 0:
      keep = tf.cast(tf.random.uniform(tf.shape(flag)) >= self._rate, views.dtype)
      mask, pooled, flag = mask * keep, pooled * keep, flag * keep
    return tf.concat([views[:, 0] * mask[:, :1], pooled, flag], axis=1)

  def _pool(self, views, mask, ages, query) -> tf.Tensor:
    """Attention over the present views (zero when none)."""
    age = tf.math.log1p(tf.cast(tf.maximum(ages, 0), views.dtype)) / tf.math.log1p(
        AGE_SCALE_SECONDS)
    keys = self.key_projection(tf.concat([views, age[..., tf.newaxis]], axis=2))
    logits = tf.einsum("bd,bsd->bs", self.query_projection(query), keys)
    logits = logits / tf.sqrt(tf.cast(tf.shape(keys)[2], views.dtype)) + self.position_bias
    logits -= tf.stop_gradient(tf.reduce_max(logits, axis=1, keepdims=True))
    weights = tf.exp(logits) * mask
    weights /= tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1e-9)
    return tf.einsum("bs,bsd->bd", weights, views)
