"""The Trainer's step budget: capped at max_epochs passes over the train examples."""
import pytest
import tensorflow as tf

from ctxrec.trainer import run
from ctxrec.trainer.config import TrainerConfig


def _write_examples(path, count):
  with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
    for i in range(count):
      example = tf.train.Example(features=tf.train.Features(feature={
          "n": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))}))
      writer.write(example.SerializeToString())
  return [str(path)]


def test_a_short_log_trains_at_most_max_epochs(tmp_path):
  files = _write_examples(tmp_path / "train.gz", 25)
  config = TrainerConfig(batch_size=10, max_epochs=2.0)
  assert run.capped_steps(1000, files, config) == 5  # ceil(2 * 25 / 10)


def test_enough_examples_keep_the_step_budget(tmp_path):
  files = _write_examples(tmp_path / "train.gz", 60)
  assert run.capped_steps(10, files, TrainerConfig(batch_size=10, max_epochs=2.0)) == 10
  assert run.capped_steps(13, files, TrainerConfig(batch_size=10, max_epochs=2.0)) == 12


def test_max_epochs_must_be_positive():
  with pytest.raises(ValueError, match="max_epochs"):
    TrainerConfig(max_epochs=0)
