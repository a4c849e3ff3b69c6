"""Exports ONE SavedModel with the four signatures of ARCHITECTURE.md, raw features in."""
from typing import Dict

import tensorflow as tf

from ctxrec.trainer.model import ContextualRetrievalModel
from ctxrec.transform import features as f


def _spec(shape, dtype, name) -> tf.TensorSpec:
  return tf.TensorSpec(shape, dtype, name=name)


def input_specs(model: ContextualRetrievalModel) -> Dict[str, Dict[str, tf.TensorSpec]]:
  """Fixed, padded raw inputs of each signature ("" / 0 pad; histories most recent last)."""
  length, k = model.config.history_length, model.config.max_categories
  views = model.config.session_views
  history = {f.HISTORY_ITEM_IDS: _spec([None, length], tf.string, f.HISTORY_ITEM_IDS),
             f.HISTORY_CATEGORIES: _spec([None, length], tf.string, f.HISTORY_CATEGORIES),
             f.HISTORY_AGE_DAYS: _spec([None, length], tf.int64, f.HISTORY_AGE_DAYS)}
  context = {}
  if model.config.use_context:
    context = {  # the session, most recent view first
        f.CONTEXT_ITEM_ID: _spec([None, views], tf.string, f.CONTEXT_ITEM_ID),
        f.CONTEXT_AGE_SECONDS: _spec([None, views], tf.int64, f.CONTEXT_AGE_SECONDS),
        f.CONTEXT_CATEGORIES: _spec([None, views, k], tf.string, f.CONTEXT_CATEGORIES),
        f.CONTEXT_CONFIDENCES: _spec([None, views, k], tf.float32, f.CONTEXT_CONFIDENCES)}
  context.update({n: _spec([None], tf.string, n) for n in model.demographic_features})
  items = {f.ITEM_ID: _spec([None], tf.string, f.ITEM_ID),
           f.ITEM_CATEGORIES: _spec([None, k], tf.string, f.ITEM_CATEGORIES),
           f.ITEM_CONFIDENCES: _spec([None, k], tf.float32, f.ITEM_CONFIDENCES)}
  state = {f.HISTORY_STATE: _spec([None, model.state_dim], tf.float32, f.HISTORY_STATE)}
  return {f.SIGNATURE_ENCODE_HISTORY: history,
          f.SIGNATURE_CONTEXT_HEAD: {**state, **context},
          f.SIGNATURE_EMBED_ITEMS: items,
          f.SIGNATURE_SERVING_DEFAULT: {**history, **context}}


def signatures(model: ContextualRetrievalModel) -> Dict[str, tf.types.experimental.ConcreteFunction]:
  specs = input_specs(model)

  def encode_history(inputs):
    return {f.HISTORY_STATE: model.encode_history(inputs)}

  def context_head(inputs):
    return model.context_head(inputs[f.HISTORY_STATE], inputs)

  def embed_items(inputs):
    return {f.ITEM_EMBEDDING: model.embed_items(inputs)}

  def serving_default(inputs):
    return model.user_embedding(inputs)

  functions = {f.SIGNATURE_ENCODE_HISTORY: encode_history, f.SIGNATURE_CONTEXT_HEAD: context_head,
               f.SIGNATURE_EMBED_ITEMS: embed_items, f.SIGNATURE_SERVING_DEFAULT: serving_default}
  return {name: tf.function(fn, input_signature=[specs[name]]).get_concrete_function()
          for name, fn in functions.items()}


def export(model: ContextualRetrievalModel, directory: str) -> None:
  """Writes the SavedModel; the Transform graph's tables and vocabularies travel as assets."""
  tf.saved_model.save(model, directory, signatures=signatures(model))
