"""Model pieces on the tiny Transform graph: padding invariance, context dropout, history-only."""

import numpy as np
import pytest
import tensorflow as tf

from ctxrec.trainer import export, run
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


def test_context_dropout_drops_whole_contexts_in_training_only(tft_output, train_files):
  config = TrainerConfig(context_dropout=0.5)
  model = run.build_model(config, tft_output)
  batch = _batch(tft_output, train_files, config, fixed=False)
  ids = model.raw_features({f.CONTEXT_ITEM_ID: batch[f.CONTEXT_ITEM_ID],
                            f.CONTEXT_CATEGORIES: batch[f.CONTEXT_CATEGORIES]})
  args = (ids[f.CONTEXT_CATEGORIES], batch[f.CONTEXT_CONFIDENCES], ids[f.CONTEXT_ITEM_ID])
  assert np.all(model.context_layer(*args, training=False).numpy()[:, -1] == 1.0)  # augmented
  tf.random.set_seed(3)
  dropped = model.context_layer(*args, training=True).numpy()
  flags = dropped[:, -1]
  assert set(np.unique(flags)) <= {0.0, 1.0} and 0 < flags.sum() < len(flags)
  assert np.all(dropped[flags == 0] == 0.0)  # the whole context, not single units


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
  assert not inputs & {f.CONTEXT_ITEM_ID, f.CONTEXT_CATEGORIES, f.CONTEXT_CONFIDENCES}


def test_item_mode_context_uses_the_shared_item_embedding(tft_output, train_files):
  model = run.build_model(TrainerConfig(context_mode="item"), tft_output)
  batch = _batch(tft_output, train_files, model.config, fixed=False)
  assert model.context_layer.item_embedding is model.item_embedding
  with_item = dict(batch)
  with_item[f.CONTEXT_ITEM_ID] = tf.reshape(batch[f.LABEL_ITEM_ID], [-1, 1])
  without_item = dict(batch)
  without_item[f.CONTEXT_ITEM_ID] = tf.fill(tf.shape(with_item[f.CONTEXT_ITEM_ID]), "")
  model.user_embedding(with_item)  # builds the weights; item rows start at zero (untrained)
  table = model.item_embedding.embeddings
  table.assign(tf.random.stateless_normal(table.shape, seed=[1, 2]))
  assert not np.allclose(model.user_embedding(with_item)[f.USER_EMBEDDING],
                         model.user_embedding(without_item)[f.USER_EMBEDDING])
  assert np.isfinite(model.compute_loss(with_item, training=True).numpy())
