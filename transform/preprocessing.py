"""The tf.Transform preprocessing_fn: one item vocabulary, one category vocabulary, demographics.

History, label, context and the item tower share the item vocabulary, so one item id maps to
one embedding row everywhere. Outputs are vocabulary indices (OOV ids hash into
`num_oov_buckets` rows past the vocabulary); the model applies this graph to raw inputs.
"""
from typing import Dict

import tensorflow as tf
import tensorflow_transform as tft

from ctxrec.transform import features as f

NUM_OOV_BUCKETS = 10
ITEM_FEATURES = (f.HISTORY_ITEM_IDS, f.LABEL_ITEM_ID, f.CONTEXT_ITEM_ID)
CATEGORY_FEATURES = (f.HISTORY_CATEGORIES, f.LABEL_CATEGORIES, f.CONTEXT_CATEGORIES)
DEMOGRAPHIC_PREFIX = f.demographic_feature("")


def _values(inputs, names) -> tf.Tensor:
  return tf.concat([inputs[name].values for name in names], axis=0)


def _lookup(inputs, names, vocabulary) -> Dict[str, tf.SparseTensor]:
  return {name: tft.apply_vocabulary(inputs[name], vocabulary, num_oov_buckets=NUM_OOV_BUCKETS)
          for name in names}


def preprocessing_fn(inputs: Dict[str, tf.SparseTensor]) -> Dict[str, tf.SparseTensor]:
  """Maps every string id feature to its vocabulary index; vocabularies come from train."""
  items = tft.vocabulary(_values(inputs, ITEM_FEATURES), vocab_filename=f.ITEM_VOCABULARY)
  categories = tft.vocabulary(_values(inputs, CATEGORY_FEATURES),
                              vocab_filename=f.CATEGORY_VOCABULARY)
  tft.vocabulary(inputs[f.LABEL_ITEM_ID].values, vocab_filename=f.LABEL_FREQUENCY_VOCABULARY,
                 store_frequency=True)  # label counts, for the log-Q correction of the loss
  outputs = {**_lookup(inputs, ITEM_FEATURES, items),
             **_lookup(inputs, CATEGORY_FEATURES, categories)}
  for name in inputs:
    if name.startswith(DEMOGRAPHIC_PREFIX):
      column = name[len(DEMOGRAPHIC_PREFIX):]
      vocabulary = tft.vocabulary(inputs[name].values,
                                  vocab_filename=f.demographic_vocabulary(column))
      outputs.update(_lookup(inputs, [name], vocabulary))
  return outputs
