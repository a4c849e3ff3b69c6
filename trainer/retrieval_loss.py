"""In-batch softmax retrieval loss over the whole score: the dot product plus the exact boosts.

TFRS's Retrieval task scores query · candidate only; the boosts of score_priors.py are part of
the score and must be part of the loss, so this is that task with one more [B, B] term, and the
same log-Q correction and removal of accidental hits (another row's positive that is this row's
positive too, which is not a negative).
"""
from typing import Optional

import tensorflow as tf

_MASKED = -1e9


def in_batch_softmax(queries: tf.Tensor, candidates: tf.Tensor, boosts: tf.Tensor,
                     candidate_ids: tf.Tensor, temperature: float,
                     sampling_probability: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Mean cross-entropy of each query's own candidate (the diagonal) against the batch's;
  `boosts` [B, B] are in score units like queries @ candidates^T."""
  logits = (tf.matmul(queries, candidates, transpose_b=True) + boosts) / temperature
  if sampling_probability is not None:  # popular candidates are over-sampled as negatives
    logits -= tf.math.log(tf.maximum(sampling_probability, 1e-12))[tf.newaxis, :]
  same_item = tf.equal(candidate_ids[:, tf.newaxis], candidate_ids[tf.newaxis, :])
  off_diagonal = tf.logical_not(tf.cast(tf.eye(tf.shape(logits)[0]), tf.bool))
  logits = tf.where(tf.logical_and(same_item, off_diagonal), _MASKED, logits)
  labels = tf.range(tf.shape(logits)[0])
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


