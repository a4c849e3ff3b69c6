"""The contextual sequential two-tower model (TFRS): history encoder, context head, item tower."""
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tensorflow_transform as tft

from ctxrec.trainer.config import MODE_ITEM, TrainerConfig
from ctxrec.trainer.context_layer import ContextLayer, weighted_category_bag
from ctxrec.trainer.history_encoder import HistoryEncoder
from ctxrec.trainer.oov_dropout import OovDropout
from ctxrec.trainer.raw_features import RawFeatureTransform
from ctxrec.trainer.retrieval_loss import in_batch_softmax
from ctxrec.trainer.score_priors import HISTORY_CATEGORIES, TAIL_WIDTH, ScorePriors, batch_boosts
from ctxrec.trainer.sparse_rate_embedding import SparseRateEmbedding
from ctxrec.transform import category_keys
from ctxrec.transform import features as f
from ctxrec.transform.preprocessing import NUM_OOV_BUCKETS

DEMOGRAPHIC_DIM = 16


def _table_size(tft_output: tft.TFTransformOutput, vocabulary: str) -> int:
  """Rows of an embedding over a vocabulary: padding, the vocabulary, then the OOV buckets."""
  return 1 + tft_output.vocabulary_size_by_name(vocabulary) + NUM_OOV_BUCKETS


def label_probabilities(tft_output: tft.TFTransformOutput,
                        counts: Optional[Dict[bytes, float]] = None) -> np.ndarray:
  """P(item is a train label) per item id, add-one smoothed (an unseen item counts 1, an item
  seen once 2), for the log-Q correction and the popularity term of the score; from the train
  labels' frequency vocabulary, or from `counts` (label id -> count)."""
  items = tft_output.vocabulary_by_name(f.ITEM_VOCABULARY)
  table = np.ones(_table_size(tft_output, f.ITEM_VOCABULARY), np.float32)
  index = {item: i + 1 for i, item in enumerate(items)}
  for item, count in (counts if counts is not None else _label_frequencies(tft_output)).items():
    if item in index:
      table[index[item]] += float(count)
  return table / table.sum()


def _label_frequencies(tft_output: tft.TFTransformOutput) -> Dict[bytes, float]:
  counts = {}
  with tf.io.gfile.GFile(tft_output.vocabulary_file_by_name(f.LABEL_FREQUENCY_VOCABULARY)) as fh:
    for line in fh:
      count, _, item = line.rstrip("\n").partition(" ")
      counts[item.encode()] = float(count)
  return counts


def _mlp(units, output_dim: int, name: str) -> tf.keras.Sequential:
  return tf.keras.Sequential([tf.keras.layers.Dense(u, activation="relu") for u in units]
                             + [tf.keras.layers.Dense(output_dim)], name=name)


class ContextualRetrievalModel(tfrs.Model):
  """User tower = history encoder + context layer + demographics → MLP; item tower beside it.

  Every entry point takes dense raw features (see input_pipeline.dense_features) and returns
  vectors whose dot product is the retrieval score: the L2-normalised towers, followed by the
  explicit terms of score_priors.py; `use_context=False` builds the history-only baseline.
  """

  def __init__(self, config: TrainerConfig, tft_output: tft.TFTransformOutput,
               demographic_features: List[str]):
    super().__init__()
    self.config = config
    self.demographic_features = list(demographic_features)
    dim = config.embedding_dim
    self.raw_features = RawFeatureTransform(tft_output)
    # Zeros: an item knows nothing but its categories until it is trained on, so the learned
    # score of the many items a short log never shows is their categories', not random noise.
    self.item_embedding = SparseRateEmbedding(
        _table_size(tft_output, f.ITEM_VOCABULARY), dim, rate=config.item_embedding_rate,
        embeddings_initializer="zeros", name="item_embedding")
    self.category_embedding = tf.keras.layers.Embedding(
        _table_size(tft_output, f.CATEGORY_VOCABULARY), dim, name="category_embedding")
    self.demographic_embeddings = [
        tf.keras.layers.Embedding(_table_size(tft_output, f.demographic_vocabulary(
            name[len(f.demographic_feature("")):])), DEMOGRAPHIC_DIM, name=f"{name}_embedding")
        for name in self.demographic_features]
    self.oov_dropout = OovDropout(
        config.oov_rate, 1 + tft_output.vocabulary_size_by_name(f.ITEM_VOCABULARY),
        NUM_OOV_BUCKETS)
    self.history_encoder = HistoryEncoder(config, self.item_embedding, self.category_embedding)
    self.context_layer = (
        ContextLayer(config.session_views, self.category_embedding,
                     self.item_embedding if config.context_mode == MODE_ITEM else None,
                     config.context_dropout) if config.use_context else None)
    self.head = _mlp(config.head_units, dim, "head")
    self.item_tower = _mlp(config.item_tower_units, dim, "item_tower")
    self._tft_output = tft_output
    # A variable so that validation can score with the popularity of the labels trained on
    # (set_label_counts) and the export with every train label's.
    self.label_probability = tf.Variable(label_probabilities(tft_output), trainable=False,
                                         name="label_probability")
    self.score_priors = (ScorePriors(self.label_probability, config.temperature)
                         if config.score_priors else None)

  def set_label_counts(self, counts: Optional[Dict[bytes, float]] = None) -> None:
    """The popularity the score and log-Q use: `counts` (label id -> count), or all train
    labels' (None)."""
    self.label_probability.assign(label_probabilities(self._tft_output, counts))

  @property
  def state_dim(self) -> int:
    """Width of the history state: the encoder's, then score_priors' top categories."""
    extra = TAIL_WIDTH if self.score_priors is not None else 0
    return self.config.embedding_dim + extra

  def encode_history(self, raw: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    ids = self.raw_features({f.HISTORY_ITEM_IDS: raw[f.HISTORY_ITEM_IDS],
                             f.HISTORY_CATEGORIES: raw[f.HISTORY_CATEGORIES]})
    state = self.history_encoder(self.oov_dropout(ids[f.HISTORY_ITEM_IDS], training=training),
                                 ids[f.HISTORY_CATEGORIES], raw[f.HISTORY_AGE_DAYS],
                                 training=training)
    if self.score_priors is None:
      return state
    return tf.concat([state, self.score_priors.history_tail(raw[f.HISTORY_CATEGORIES])], axis=1)

  def context_head(self, history_state: tf.Tensor, raw: Dict[str, tf.Tensor],
                   training: bool = False) -> Dict[str, tf.Tensor]:
    """The user embedding and its boosts (USER_EMBEDDING, BOOST_KEYS, BOOST_WEIGHTS)."""
    state = self._learnable_state(history_state)
    parts = [state]
    rows = tf.shape(history_state)[0]
    has_context = tf.zeros([rows], tf.bool)
    if self.context_layer is not None:
      item_ids, category_ids = self._session_ids(raw)
      context = self.context_layer(
          category_ids, raw[f.CONTEXT_CONFIDENCES], self.oov_dropout(item_ids, training=training),
          raw[f.CONTEXT_AGE_SECONDS], state, training=training)
      parts.append(context)
      has_context = context[:, -1] > 0  # the has-context flag, 0 where training dropped it
    if self.demographic_features:
      ids = self.raw_features({n: raw[n][:, tf.newaxis] for n in self.demographic_features})
      parts += [layer(ids[n][:, 0])
                for n, layer in zip(self.demographic_features, self.demographic_embeddings)]
    features = tf.concat(parts, axis=1)
    learned = tf.math.l2_normalize(self.head(features, training=training), axis=1)
    if self.score_priors is None:
      return {f.USER_EMBEDDING: learned, f.BOOST_KEYS: tf.zeros([rows, 0], tf.int64),
              f.BOOST_WEIGHTS: tf.zeros([rows, 0], tf.float32)}
    shape = [rows, self.config.session_views, self.config.max_categories]
    categories = (raw[f.CONTEXT_CATEGORIES] if self.context_layer is not None
                  else tf.fill(shape, ""))
    confidences = (raw[f.CONTEXT_CONFIDENCES] if self.context_layer is not None
                   else tf.zeros(shape))
    query, keys, weights = self.score_priors.query(learned, features, history_state, categories,
                                                   confidences, has_context)
    return {f.USER_EMBEDDING: query, f.BOOST_KEYS: keys, f.BOOST_WEIGHTS: weights}

  def _session_ids(self, raw: Dict[str, tf.Tensor]):
    """Vocabulary ids of the session's items [B, S] and categories [B, S, K]: the Transform
    graph takes rank-2 features, so the categories pass through it flattened."""
    categories = raw[f.CONTEXT_CATEGORIES]
    views, width = self.config.session_views, self.config.max_categories
    ids = self.raw_features({f.CONTEXT_ITEM_ID: raw[f.CONTEXT_ITEM_ID],
                             f.CONTEXT_CATEGORIES: tf.reshape(categories, [-1, views * width])})
    return ids[f.CONTEXT_ITEM_ID], tf.reshape(ids[f.CONTEXT_CATEGORIES], [-1, views, width])

  def _learnable_state(self, history_state: tf.Tensor) -> tf.Tensor:
    """The state the networks read: the encoder's and the top categories' shares, not their
    keys (two float halves of a 48-bit fingerprint each, up to 2^24: names, not magnitudes)."""
    if self.score_priors is None:
      return history_state
    return tf.concat([history_state[:, :-TAIL_WIDTH],
                      history_state[:, -TAIL_WIDTH + 2 * HISTORY_CATEGORIES:]], axis=1)

  def _item_ids(self, raw: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Vocabulary ids of raw item features: item id [B] and categories [B, K]."""
    ids = self.raw_features({f.LABEL_ITEM_ID: raw[f.ITEM_ID][:, tf.newaxis],
                             f.LABEL_CATEGORIES: raw[f.ITEM_CATEGORIES]})
    return {f.ITEM_ID: ids[f.LABEL_ITEM_ID][:, 0], f.ITEM_CATEGORIES: ids[f.LABEL_CATEGORIES]}

  def _item_tower(self, ids: Dict[str, tf.Tensor], confidences: tf.Tensor,
                  training: bool) -> tf.Tensor:
    bag = weighted_category_bag(self.category_embedding, ids[f.ITEM_CATEGORIES], confidences)
    item = self.item_embedding(ids[f.ITEM_ID])
    learned = tf.math.l2_normalize(
        self.item_tower(tf.concat([item, bag], axis=1), training=training), axis=1)
    if self.score_priors is None:
      return learned
    return self.score_priors.candidate(learned, ids[f.ITEM_ID])

  def embed_items(self, raw: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    return self._item_tower(self._item_ids(raw), raw[f.ITEM_CONFIDENCES], training)

  def user_embedding(self, raw: Dict[str, tf.Tensor],
                     training: bool = False) -> Dict[str, tf.Tensor]:
    return self.context_head(self.encode_history(raw, training), raw, training)

  def _batch_scores(self, features: Dict[str, tf.Tensor], training: bool):
    """(queries, candidates, boosts [B, B], label ids): the batch's labels as candidates."""
    users = self.user_embedding(features, training=training)
    ids = self._item_ids({f.ITEM_ID: features[f.LABEL_ITEM_ID],
                          f.ITEM_CATEGORIES: features[f.LABEL_CATEGORIES]})
    label_ids = ids[f.ITEM_ID]
    shown = {**ids, f.ITEM_ID: self.oov_dropout(label_ids, training=training)}
    items = self._item_tower(shown, features[f.LABEL_CONFIDENCES], training)
    label_keys = category_keys.primary_keys(features[f.LABEL_CATEGORIES],
                                            features[f.LABEL_CONFIDENCES])
    boosts = batch_boosts(users[f.BOOST_KEYS], users[f.BOOST_WEIGHTS], label_keys)
    return users[f.USER_EMBEDDING], items, boosts, label_ids

  def compute_loss(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    queries, items, boosts, label_ids = self._batch_scores(features, training)
    probability = (tf.gather(self.label_probability, label_ids)
                   if self.config.log_q_correction else None)
    return in_batch_softmax(queries, items, boosts, label_ids, self.config.temperature,
                            probability)
