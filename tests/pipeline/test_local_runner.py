"""The ingestion half end to end with LocalDagRunner: outputs, time contract, caching, gate."""
import dataclasses
import glob
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tfx import v1 as tfx
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from ctxrec.components.anomalies_gate.executor import DataAnomaliesError
from ctxrec.components.sequence_example_gen.config import SECONDS_PER_DAY, SequenceExampleGenConfig
from ctxrec.pipeline import local_runner, preflight, schema
from ctxrec.pipeline.config import PipelineConfig
from ctxrec.pipeline.training_pipeline import create_pipeline
from ctxrec.transform import features as f

pytestmark = pytest.mark.slow
COMPONENTS = {"SequenceExampleGen", "StatisticsGen", "ExamplesSchemaGen", "ExampleValidator",
              "AnomaliesGate", "Transform", "PseudoContextAugmenter", "Trainer",
              "HistoryOnlyTrainer", "RetrievalEvaluator", "Pusher", "IndexBuilder"}


def read_examples(output_dir: str, split: str) -> list:
  pattern = os.path.join(output_dir, "pipeline_root", "SequenceExampleGen", "examples", "*",
                         f"Split-{split}", "*.gz")
  files = sorted(glob.glob(pattern))
  assert files, pattern
  dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
  return [tf.train.Example.FromString(record.numpy()) for record in dataset]


def _values(example, name):
  feature = example.features.feature[name]
  return list(feature.bytes_list.value or feature.int64_list.value or feature.float_list.value)


@pytest.fixture(scope="module")
def tiny_run(tiny_pipeline):
  return tiny_pipeline


def test_first_run_runs_every_component_and_fills_both_splits(tiny_run):
  _, summary = tiny_run
  assert {r.component for r in summary.components} == COMPONENTS
  assert all(r.state == "ran" for r in summary.components)
  assert summary.examples[f.TRAIN] > 0 and summary.examples[f.EVAL] > 0


def test_examples_honour_the_time_contract_against_raw_events(tiny_run, tiny_data):
  config, summary = tiny_run
  events = pd.read_parquet(os.path.join(tiny_data, "events.parquet"))
  conversions = events[events[f.EVENT_TYPE] == f.EVENT_CONVERSION].sort_values(
      [f.USER_ID, f.TIMESTAMP], kind="stable")
  by_user = {u: g for u, g in conversions.groupby(f.USER_ID)}
  cutoff_day = preflight.check_inputs(config).split.eval_start_day  # as the run planned it
  for split in f.SPLITS:
    examples = read_examples(config.output_dir, split)
    assert len(examples) == summary.examples[split]
    for example in examples[:300]:
      user = _values(example, f.USER_ID)[0].decode()
      label_time = _values(example, f.LABEL_TIMESTAMP)[0]
      day_start = label_time // SECONDS_PER_DAY * SECONDS_PER_DAY
      earlier = by_user[user][by_user[user][f.TIMESTAMP] < day_start]
      history = [v.decode() for v in _values(example, f.HISTORY_ITEM_IDS)]
      assert set(earlier[f.ITEM_ID].tail(50)) == set(history)  # nothing from the label day on
      assert len(history) == min(len(earlier), 50)
      assert (label_time // SECONDS_PER_DAY >= cutoff_day) == (split == f.EVAL)


def test_both_splits_have_real_context_except_for_direct_conversions(tiny_run):
  config, _ = tiny_run
  for split in f.SPLITS:
    examples = read_examples(config.output_dir, split)
    with_context = np.mean([bool(_values(e, f.CONTEXT_ITEM_ID)) for e in examples])
    # A share p_convert_direct (0.2) of the generator's conversions follow no view; the others
    # follow one within minutes.
    assert 0.7 < with_context < 0.9, split


def test_second_run_is_cached(tiny_run):
  config, _ = tiny_run
  again = local_runner.run_local(config)
  assert {r.state for r in again.components} == {"cached"}
  assert again.examples == tiny_run[1].examples


def test_anomalies_stop_the_pipeline_naming_feature_and_anomaly(write_tables, tmp_path):
  day = SECONDS_PER_DAY
  events = [("u1", "a", "conversion", 1767225600 + d * day) for d in range(6)]
  events += [("u2", "b", "conversion", 1767225600 + d * day) for d in range(6)]
  data = write_tables(events, users=[("u1", "US", "25-34")])
  config = dataclasses.replace(
      PipelineConfig(data_dir=data, output_dir=str(tmp_path / "out"), validate_only=True),
      example_gen=SequenceExampleGenConfig(eval_days=2, min_train_examples=1))
  strict = schema.packaged_schema()  # the run adds the demographic features to it
  for feature in strict.feature:
    if feature.name == f.HISTORY_AGE_DAYS:
      feature.int_domain.max = 1  # the data has ages up to 4 days
  config = dataclasses.replace(config, base_schema=text_format.MessageToString(strict))
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      str(tmp_path / "mlmd.sqlite"))
  with pytest.raises(Exception) as error:
    LocalDagRunner().run(create_pipeline(config, metadata_connection_config=connection))
  chain, exc = [], error.value
  while exc is not None:
    chain.append(exc)
    exc = exc.__cause__ or exc.__context__
  gate_errors = [e for e in chain if isinstance(e, DataAnomaliesError)]
  assert gate_errors, chain
  assert "feature 'history_age_days'" in str(gate_errors[0])
  assert "Out-of-range values" in str(gate_errors[0])


HAND_EXAMPLE_GEN = SequenceExampleGenConfig(min_train_examples=1)  # 60 conversions in all


def _hand_events():
  start, events = 1767225600, []
  for user in range(6):
    for day in range(10):
      t = start + day * SECONDS_PER_DAY + 3600 * (user + 1)
      item = f"i{(user * 3 + day) % 7}"
      events += [(f"u{user}", item, "view", t), (f"u{user}", item, "conversion", t + 30)]
  return events


def _example_set(output_dir):
  return {split: sorted(e.SerializeToString(deterministic=True)
                        for e in read_examples(output_dir, split)) for split in f.SPLITS}


def test_csv_input_gives_the_same_examples_as_parquet(write_tables, tmp_path):
  results = []
  for fmt in ("parquet", "csv"):
    data = write_tables(_hand_events(), fmt=fmt, folder=fmt)  # no users table: demographics unknown
    config = PipelineConfig(data_dir=data, output_dir=str(tmp_path / f"out_{fmt}"),
                            validate_only=True, example_gen=HAND_EXAMPLE_GEN)
    local_runner.run_local(config)
    results.append(_example_set(config.output_dir))
  assert results[0] == results[1]
  example = tf.train.Example.FromString(results[0][f.EVAL][0])
  assert example.features.feature[f.demographic_feature("country")].bytes_list.value == [b"unknown"]


def test_changed_input_invalidates_the_cache(write_tables, tmp_path):
  data = write_tables(_hand_events())
  config = PipelineConfig(data_dir=data, output_dir=str(tmp_path / "out"), validate_only=True,
                          example_gen=HAND_EXAMPLE_GEN)
  first = local_runner.run_local(config)
  write_tables(_hand_events()[:-10])
  second = local_runner.run_local(config)
  states = {r.component: r.state for r in second.components}
  assert states["SequenceExampleGen"] == "ran"
  assert second.examples[f.EVAL] < first.examples[f.EVAL]
