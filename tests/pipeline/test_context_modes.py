"""Both context modes run end to end: the default through the shared tiny run, the other here."""
import glob
import json
import os

import pytest
import tensorflow as tf

from ctxrec.pipeline import local_runner
from ctxrec.pipeline.config import PipelineConfig
from ctxrec.components.pseudo_context.config import PseudoContextConfig
from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.trainer.config import CONTEXT_MODES, TrainerConfig
from ctxrec.transform import features as f

OTHER_MODE = next(mode for mode in CONTEXT_MODES if mode != TrainerConfig().context_mode)


def _train_context_lengths(config, find_output) -> set:
  """How many categories the train examples' contexts carry (0 = none)."""
  folder = find_output(config, "PseudoContextAugmenter", "augmented_examples")
  files = glob.glob(os.path.join(folder, "Split-train", "*.gz"))
  lengths = set()
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(2000):
    example = tf.train.Example.FromString(record.numpy())
    lengths.add(len(example.features.feature[f.CONTEXT_CATEGORIES].bytes_list.value))
  return lengths


@pytest.mark.slow
def test_the_other_context_mode_trains_evaluates_and_exports(tiny_data, tmp_path, find_output):
  config = PipelineConfig(
      data_dir=tiny_data, output_dir=str(tmp_path / "out"), train_steps=40,
      trainer=TrainerConfig(context_mode=OTHER_MODE, batch_size=64),
      pseudo_context=PseudoContextConfig(mode=OTHER_MODE))
  summary = local_runner.run_local(config)
  assert {r.state for r in summary.components} == {"ran"}
  assert len(_train_context_lengths(config, find_output)) >= 3  # contexts vary in length within batches
  report = summary.report
  assert report["context_mode"] == OTHER_MODE
  assert report["metrics"][m.CONTEXTUAL][m.REAL_CONTEXT]["n"] > 0
  with open(os.path.join(config.report_dir, "report.md")) as handle:
    assert f"ceiling for context mode {OTHER_MODE}" in handle.read()
  json.dumps(report)  # what tools read
