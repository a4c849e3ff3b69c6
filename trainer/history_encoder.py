"""The history encoder: a causal Transformer over the user's conversions; last state = history_state."""
import tensorflow as tf

from ctxrec.trainer.config import TrainerConfig

NUM_AGE_BUCKETS = 12  # log2 buckets of age in days: 0, 1, 2-3, 4-7, ... ; 0 is padding


def age_buckets(age_days: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  """Log2 buckets of age in days, 1-based so that bucket 0 is padding."""
  age = tf.cast(tf.maximum(age_days, 0), tf.float32)
  bucket = tf.cast(tf.math.floor(tf.math.log(age + 1.0) / tf.math.log(2.0)), tf.int64) + 1
  return tf.where(mask, tf.minimum(bucket, NUM_AGE_BUCKETS - 1), tf.zeros_like(bucket))


class TransformerBlock(tf.keras.layers.Layer):
  """Pre-norm self-attention and feed-forward, each with a residual connection."""

  def __init__(self, config: TrainerConfig, **kwargs):
    super().__init__(**kwargs)
    dim = config.embedding_dim
    self.attention = tf.keras.layers.MultiHeadAttention(
        config.num_heads, dim // config.num_heads, dropout=config.dropout)
    self.feed_forward = tf.keras.Sequential([
        tf.keras.layers.Dense(config.feed_forward_dim, activation="gelu"),
        tf.keras.layers.Dense(dim)])
    self.norm_attention = tf.keras.layers.LayerNormalization(epsilon=1e-6)
    self.norm_feed_forward = tf.keras.layers.LayerNormalization(epsilon=1e-6)
    self.dropout = tf.keras.layers.Dropout(config.dropout)

  def call(self, x, attention_mask, training=False):
    h = self.norm_attention(x)
    x = x + self.dropout(self.attention(h, h, attention_mask=attention_mask, training=training),
                         training=training)
    h = self.norm_feed_forward(x)
    return x + self.dropout(self.feed_forward(h), training=training)


class HistoryEncoder(tf.keras.layers.Layer):
  """Encodes left-aligned histories (most recent last, 0 = padding) into one state per user.

  Any width up to history_length works: training batches are only as wide as their longest
  history, while the exported signatures take the full fixed width.

  A learned start token precedes every history, so an empty history (a cold-start user) still
  has a state: the start token's.
  """

  def __init__(self, config: TrainerConfig, item_embedding, category_embedding, **kwargs):
    super().__init__(**kwargs)
    self._length = config.history_length
    self.item_embedding = item_embedding
    self.category_embedding = category_embedding
    dim = config.embedding_dim
    self.position_embedding = tf.keras.layers.Embedding(config.history_length + 1, dim)
    self.age_embedding = tf.keras.layers.Embedding(NUM_AGE_BUCKETS, dim)
    self.blocks = [TransformerBlock(config, name=f"block_{i}") for i in range(config.num_blocks)]
    self.norm = tf.keras.layers.LayerNormalization(epsilon=1e-6)
    self.input_dropout = tf.keras.layers.Dropout(config.dropout)

  def build(self, input_shape):
    self.start = self.add_weight(name="start", shape=[self.item_embedding.output_dim],
                                 initializer="random_normal")
    super().build(input_shape)

  def call(self, item_ids, category_ids, age_days, training=False):
    mask = item_ids > 0
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    x = (self.item_embedding(item_ids) + self.category_embedding(category_ids)
         + self.age_embedding(age_buckets(age_days, mask)))
    batch, width = tf.shape(item_ids)[0], tf.shape(item_ids)[1]  # width <= history_length
    x = tf.concat([tf.tile(self.start[tf.newaxis, tf.newaxis, :], [batch, 1, 1]), x], axis=1)
    # Position = recency rank (0 = most recent); the start token gets its own position.
    index = tf.range(width)[tf.newaxis, :]
    recency = tf.clip_by_value(lengths[:, tf.newaxis] - 1 - index, 0, self._length - 1)
    positions = tf.concat([tf.fill([batch, 1], self._length), recency], axis=1)
    x = self.input_dropout(x + self.position_embedding(positions), training=training)
    valid = tf.concat([tf.ones([batch, 1], tf.bool), mask], axis=1)
    causal = tf.linalg.band_part(tf.ones([width + 1, width + 1], tf.bool), -1, 0)
    attention_mask = tf.logical_and(causal[tf.newaxis], valid[:, tf.newaxis, :])
    for block in self.blocks:
      x = block(x, attention_mask, training=training)
    last = tf.gather(x, lengths, axis=1, batch_dims=1)  # index 0 is the start token
    return self.norm(last)
