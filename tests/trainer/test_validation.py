"""The Trainer's validation: the train split's latest examples, ranked over the train labels."""

import numpy as np
import pytest
import tensorflow as tf

from ctxrec.trainer import run
from ctxrec.trainer.config import TrainerConfig
from ctxrec.trainer.input_pipeline import VALIDATION_SHARE, make_dataset, validation_cutoff
from ctxrec.trainer.validation import RECALL_AT, Validation, label_catalog, label_counts
from ctxrec.transform import category_keys
from ctxrec.transform import features as f

pytestmark = pytest.mark.slow


def _read(train_files, tft_output, **filters):
  return make_dataset(train_files, tft_output.raw_feature_spec(), TrainerConfig(), 64,
                      shuffle=False, repeat=False, fixed_history=False, **filters)



def test_the_latest_examples_are_held_out(train_files, tft_output):
  cutoff = validation_cutoff(train_files)
  every = sum(len(b[f.LABEL_ITEM_ID]) for b in _read(train_files, tft_output))
  trained = sum(len(b[f.LABEL_ITEM_ID])
                for b in _read(train_files, tft_output, held_out_from=cutoff))
  held = sum(len(b[f.LABEL_ITEM_ID])
             for b in _read(train_files, tft_output, held_out_from=cutoff, held_out=True))
  assert trained + held == every
  assert 0.5 * VALIDATION_SHARE < held / every < 2 * VALIDATION_SHARE


def test_one_label_time_cannot_be_split(tmp_path):
  path = str(tmp_path / "train.gz")
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for _ in range(20):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          f.LABEL_TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[7]))
      })).SerializeToString())
  assert validation_cutoff([path]) is None


def test_pseudo_context_filter_splits_the_examples(train_files, tft_output):
  every = sum(len(b[f.LABEL_ITEM_ID]) for b in _read(train_files, tft_output))
  derived = sum(len(b[f.LABEL_ITEM_ID])
                for b in _read(train_files, tft_output, pseudo_context=True))
  logged = sum(len(b[f.LABEL_ITEM_ID])
               for b in _read(train_files, tft_output, pseudo_context=False))
  assert derived > 0 and logged > 0 and derived + logged == every


def _numpy_recall(model, batches, catalog):
  """Recall@100 by the evaluator's arithmetic: dot products plus boosts, ranks over the labels."""
  items = model.embed_items({n: tf.constant(v) for n, v in catalog.items()}).numpy()
  keys = category_keys.primary_keys(tf.constant(catalog[f.ITEM_CATEGORIES]),
                                    tf.constant(catalog[f.ITEM_CONFIDENCES])).numpy()
  index = {item: row for row, item in enumerate(catalog[f.ITEM_ID])}
  hits = count = 0
  for batch in batches:
    users = model.user_embedding(batch)
    scores = users[f.USER_EMBEDDING].numpy() @ items.T + category_keys.boost_scores(
        users[f.BOOST_KEYS].numpy(), users[f.BOOST_WEIGHTS].numpy(), keys)
    rows = [index[label] for label in batch[f.LABEL_ITEM_ID].numpy()]
    label_scores = scores[np.arange(len(rows)), rows]
    outranked = (scores > label_scores[:, None] + 1e-4).sum(axis=1)
    hits += int((outranked < RECALL_AT).sum())
    count += len(rows)
  return hits / count


def _blank(batch):
  return {n: (tf.zeros_like(v) if v.dtype != tf.string else tf.fill(tf.shape(v), ""))
          if n.startswith("context_") else v for n, v in batch.items()}


def test_recall_without_context_is_the_evaluators_arithmetic(train_files, tft_output):
  model = run.build_model(TrainerConfig(), tft_output)
  examples = _read(train_files, tft_output).take(3)
  catalog = label_catalog(_read(train_files, tft_output))
  model.compute_loss(next(iter(examples)))
  validation = Validation(examples.take(0), examples, catalog)
  expected = _numpy_recall(model, [_blank(b) for b in examples], catalog)
  assert validation.recall(model) == pytest.approx(expected, abs=0.02)
  assert 0.0 < expected < 1.0


def test_a_viewed_label_is_pinned_first(train_files, tft_output):
  model = run.build_model(TrainerConfig(), tft_output)
  viewed_label = _read(train_files, tft_output).take(2).map(
      lambda b: {**b, f.CONTEXT_ITEM_ID: tf.concat(
          [b[f.LABEL_ITEM_ID][:, tf.newaxis], b[f.CONTEXT_ITEM_ID][:, 1:]], axis=1)})
  validation = Validation(viewed_label, viewed_label.take(0),
                          label_catalog(_read(train_files, tft_output)))
  assert validation.recall(model) == 1.0


def test_validation_scores_with_the_popularity_of_the_labels_trained_on(train_files, tft_output):
  cutoff = validation_cutoff(train_files)
  validation = Validation.from_files(train_files, tft_output.raw_feature_spec(), TrainerConfig(),
                                     cutoff)
  trained = validation.trained_label_counts
  every = label_counts(_read(train_files, tft_output))
  assert sum(trained.values()) < sum(every.values())
  assert all(trained.get(item, 0) <= count for item, count in every.items())
  model = run.build_model(TrainerConfig(), tft_output)
  exported = model.label_probability.numpy()
  model.set_label_counts(trained)
  assert not np.allclose(model.label_probability.numpy(), exported)
  model.set_label_counts(None)
  np.testing.assert_allclose(model.label_probability.numpy(), exported)
