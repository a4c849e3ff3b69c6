"""Model pieces on the tiny Transform graph: padding invariance, context dropout, history-only."""

import numpy as np
import pytest
import tensorflow as tf

from ctxrec.trainer import export, exported_model, run
from ctxrec.trainer.config import TrainerConfig
from ctxrec.trainer.input_pipeline import make_dataset
from ctxrec.transform import features as f

pytestmark = pytest.mark.slow


def _batch(tft_output, train_files, config, fixed):
  dataset = make_dataset(train_files, tft_output.raw_feature_spec(), config, 32, shuffle=False,
                         repeat=False, fixed_history=fixed)
  return next(iter(dataset))


def test_history_state_does_not_depend_on_padding_width(tft_output, train_files):
  config = TrainerConfig()
  model = run.build_model(config, tft_output)
  narrow = _batch(tft_output, train_files, config, fixed=False)
  wide = _batch(tft_output, train_files, config, fixed=True)
  assert narrow[f.HISTORY_ITEM_IDS].shape[1] < wide[f.HISTORY_ITEM_IDS].shape[1] == 50
  np.testing.assert_allclose(model.encode_history(narrow), model.encode_history(wide), atol=1e-5)


def _context_args(model, batch):
  items, categories = model._session_ids(batch)  # pylint: disable=protected-access
  state = model._learnable_state(model.encode_history(batch))  # pylint: disable=protected-access
  return (categories, batch[f.CONTEXT_CONFIDENCES], items, batch[f.CONTEXT_AGE_SECONDS], state)


def test_context_dropout_drops_whole_contexts_in_training_only(tft_output, train_files):
  config = TrainerConfig(context_dropout=0.5)
  model = run.build_model(config, tft_output)
  batch = _batch(tft_output, train_files, config, fixed=False)
  args = _context_args(model, batch)
  assert np.all(model.context_layer(*args, training=False).numpy()[:, -1] == 1.0)  # augmented
  tf.random.set_seed(3)
  dropped = model.context_layer(*args, training=True).numpy()
  flags = dropped[:, -1]
  assert set(np.unique(flags)) <= {0.0, 1.0} and 0 < flags.sum() < len(flags)
  assert np.all(dropped[flags == 0] == 0.0)  # the whole session, not single units


def test_the_session_pools_every_view_and_ignores_padding(tft_output, train_files):
  config = TrainerConfig()
  model = run.build_model(config, tft_output)
  batch = _batch(tft_output, train_files, config, fixed=False)
  categories, confidences, items, ages, state = _context_args(model, batch)
  model.context_layer.position_bias.assign(tf.range(config.session_views, dtype=tf.float32))
  one = model.context_layer(categories, confidences, items, ages, state).numpy()
  second = tf.concat([categories[:, :1], categories[:, :1], categories[:, 2:]], axis=1)
  shifted = tf.concat([confidences[:, :1], confidences[:, :1] * 0.5, confidences[:, 2:]], axis=1)
  two = model.context_layer(second, shifted, items, ages, state).numpy()
  dim = config.embedding_dim
  np.testing.assert_allclose(one[:, :dim], two[:, :dim], atol=1e-6)  # the view viewed now
  assert not np.allclose(one[:, dim:2 * dim], two[:, dim:2 * dim])  # the pooled session
  empty = model.context_layer(tf.zeros_like(categories), tf.zeros_like(confidences),
                              tf.zeros_like(items), ages, state).numpy()
  assert np.all(empty == 0.0)  # no view, no vector and no flag


def test_history_only_variant_has_no_context_inputs(tft_output, train_files, tmp_path):
  config = TrainerConfig(use_context=False, batch_size=32)
  model = run.build_model(config, tft_output)
  assert model.context_layer is None
  dataset = make_dataset(train_files, tft_output.raw_feature_spec(), config, 32, shuffle=True,
                         repeat=True, fixed_history=False)
  run.train(model, dataset, steps=3)
  export.export(model, str(tmp_path / "model"))
  signatures = tf.saved_model.load(str(tmp_path / "model")).signatures
  inputs = set(signatures[f.SIGNATURE_SERVING_DEFAULT].structured_input_signature[1])
  assert f.HISTORY_ITEM_IDS in inputs
  assert not inputs & set(exported_model.CONTEXT_FEATURES)


def test_item_mode_context_uses_the_shared_item_embedding(tft_output, train_files):
  model = run.build_model(TrainerConfig(context_mode="item"), tft_output)
  batch = _batch(tft_output, train_files, model.config, fixed=False)
  assert model.context_layer.item_embedding is model.item_embedding
  with_item = dict(batch)
  others = tf.fill([tf.shape(batch[f.LABEL_ITEM_ID])[0], model.config.session_views - 1], "")
  with_item[f.CONTEXT_ITEM_ID] = tf.concat([batch[f.LABEL_ITEM_ID][:, tf.newaxis], others], 1)
  without_item = dict(batch)
  without_item[f.CONTEXT_ITEM_ID] = tf.fill(tf.shape(with_item[f.CONTEXT_ITEM_ID]), "")
  model.user_embedding(with_item)  # builds the weights; item rows start at zero (untrained)
  table = model.item_embedding.embeddings
  table.assign(tf.random.stateless_normal(table.shape, seed=[1, 2]))
  assert not np.allclose(model.user_embedding(with_item)[f.USER_EMBEDDING],
                         model.user_embedding(without_item)[f.USER_EMBEDDING])
  assert np.isfinite(model.compute_loss(with_item, training=True).numpy())
