"""HistoryStateInferrer in the daily pipeline on tiny: every user's state is exactly
`encode_history` of the history a label on the serving day would get."""
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from ml_metadata import metadata_store
from tfx import v1 as tfx

from ctxrec.components import history_states
from ctxrec.components.history_state_inferrer.executor import serving_day, user_history_on_day
from ctxrec.components.history_state_inferrer.model_handler import EMPTY_HISTORY, EncodeHistory
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen.config import SECONDS_PER_DAY, epoch_day
from ctxrec.components.user_history import History
from ctxrec.serving import feature_store, model_versions
from ctxrec.trainer import score_priors
from ctxrec.trainer import score_priors
from ctxrec.trainer.config import TrainerConfig
from ctxrec.transform import features as f

pytestmark = pytest.mark.slow


def _histories_by_pandas(data_dir: str, day: int, length: int) -> dict:
  """The contract spelled independently: catalogued conversions before the day, last `length`."""
  events = pd.read_parquet(os.path.join(data_dir, "events.parquet"))
  items = pd.read_parquet(os.path.join(data_dir, "items.parquet"))
  primary = dict(zip(items[f.ITEM_ID],  # the highest-confidence category, whatever the order
                     (c[int(np.argmax(w))] for c, w in zip(items[f.CATEGORIES],
                                                          items[f.CONFIDENCES]))))
  events = events[(events[f.EVENT_TYPE] == f.EVENT_CONVERSION) &
                  (events[f.TIMESTAMP] < day * SECONDS_PER_DAY) &
                  events[f.ITEM_ID].isin(primary)]
  events = events.sort_values([f.USER_ID, f.TIMESTAMP, f.ITEM_ID])
  out = {}
  for user_id, group in events.groupby(f.USER_ID):
    group = group.tail(length)
    out[user_id] = History(tuple(group[f.ITEM_ID]), tuple(primary[i] for i in group[f.ITEM_ID]),
                           tuple(int(a) for a in (day * SECONDS_PER_DAY - group[f.TIMESTAMP])
                                 // SECONDS_PER_DAY))
  return out


@pytest.fixture(scope="module")
def published(tiny_daily):
  config, summary = tiny_daily
  store = feature_store.open_store(config.store_uri)
  yield config, summary, store
  store.close()


def test_every_state_equals_encode_history_of_the_history_built_for_the_day(
    published, tiny_data, tiny_pushed_model):
  config, summary, store = published
  encoder = EncodeHistory(tiny_pushed_model)
  histories = _histories_by_pandas(tiny_data, epoch_day(config.serving_date),
                                   encoder.history_length)
  users = sorted(histories)
  assert summary.states == len(users) > 400
  expected = np.concatenate([encoder([histories[u] for u in users[i:i + 128]])
                             for i in range(0, len(users), 128)])
  stored = np.stack(store.get_many(users))
  np.testing.assert_allclose(stored, expected, atol=1e-5)
  assert summary.states_version == (f"{model_versions.version_of(tiny_pushed_model)}@"
                                    f"{config.serving_date}")


def test_users_without_a_history_get_the_cold_start_state(published, tiny_data,
                                                          tiny_pushed_model):
  config, _, store = published
  events = pd.read_parquet(os.path.join(tiny_data, "events.parquet"))
  conversions = events[events[f.EVENT_TYPE] == f.EVENT_CONVERSION]
  first = conversions.groupby(f.USER_ID)[f.TIMESTAMP].min()
  newcomers = list(first[first >= epoch_day(config.serving_date) * SECONDS_PER_DAY].index)
  assert newcomers
  assert store.get_many(newcomers + ["never-seen"]) == [None] * (len(newcomers) + 1)
  np.testing.assert_allclose(store.cold_start(),
                             EncodeHistory(tiny_pushed_model)([EMPTY_HISTORY])[0], atol=1e-6)


def _latest_states(config):
  store = metadata_store.MetadataStore(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path))
  artifact = max(store.get_artifacts_by_type(history_states.HistoryStates.TYPE_NAME),
                 key=lambda a: a.id)
  return store, artifact

# The encoder's state, then the category log-shares of the explicit score terms.
STATE_DIM = TrainerConfig().embedding_dim + score_priors.TAIL_WIDTH


def test_the_artifact_holds_float32_states_under_its_version(published):
  config, summary, _ = published
  _, artifact = _latest_states(config)
  files = [p for p in os.listdir(artifact.uri) if p.startswith("states-")]
  table = pq.read_table(os.path.join(artifact.uri, files[0]))
  assert table.schema.field(history_states.STATE).type.value_type == "float"
  assert table.schema.field(history_states.STATE).type.list_size == STATE_DIM
  model_version, serving_date = summary.states_version.split("@")
  assert set(table.column(history_states.MODEL_VERSION).to_pylist()) == {model_version}
  assert set(table.column(history_states.SERVING_DATE).to_pylist()) == {serving_date}
  properties = artifact.custom_properties
  assert properties[history_states.USERS].int_value == summary.states
  assert properties[history_states.DIMENSION].int_value == STATE_DIM
  cold = pq.read_table(os.path.join(artifact.uri, "cold_start.parquet"))
  assert cold.column(f.USER_ID).to_pylist() == [history_states.COLD_START_KEY]


def test_lineage_runs_from_the_pushed_model_to_the_states(published, tiny_pushed_model):
  config, _, _ = published
  store, artifact = _latest_states(config)
  output_event, = [e for e in store.get_events_by_artifact_ids([artifact.id])
                   if e.type == e.OUTPUT]
  inputs = [e for e in store.get_events_by_execution_ids([output_event.execution_id])
            if e.type == e.INPUT]
  uris = {a.uri for a in store.get_artifacts_by_id([e.artifact_id for e in inputs])}
  assert uris == {tiny_pushed_model}


def test_a_users_history_is_merged_from_parts_and_trimmed_as_they_arrive():
  catalog = {f"i{k}": input_tables.Item((f"c{k}",), (1.0,)) for k in range(7)}
  day = 100
  conversions = [(t * 1000, f"i{t % 7}") for t in range(40)]  # all before day 100
  parts = [conversions[i::3] for i in range(3)]
  user_id, history = user_history_on_day(("u", parts), catalog, day, 3)
  last = sorted(conversions)[-3:]
  assert user_id == "u" and history.item_ids == tuple(i for _, i in last)
  assert history.categories == tuple(f"c{i[1:]}" for _, i in last)


def test_serving_date_is_checked_against_the_events():
  scan = input_tables.EventsScan(min_timestamp=epoch_day("2026-01-01") * SECONDS_PER_DAY + 5,
                                 max_timestamp=epoch_day("2026-01-30") * SECONDS_PER_DAY + 5)
  assert serving_day("", scan, "events.parquet") == epoch_day("2026-01-31")
  assert serving_day("2026-01-02", scan, "events.parquet") == epoch_day("2026-01-02")
  with pytest.raises(input_tables.InputError,
                     match=r"serving_date 2026-01-01 is not after the first event's day "
                     r"\(2026-01-01\) in events.parquet.*from 2026-01-02 on"):
    serving_day("2026-01-01", scan, "events.parquet")
  with pytest.raises(input_tables.InputError, match="not a YYYY-MM-DD date"):
    serving_day("01/02/2026", scan, "events.parquet")


def test_a_later_training_run_still_reports_the_pushers_version(tiny_daily, tiny_pipeline,
                                                               tiny_pushed_model):
  from ctxrec.pipeline import local_runner  # pylint: disable=import-outside-toplevel
  summary = local_runner.run_local(tiny_pipeline[0])  # cached; MLMD now holds the import too
  assert summary.report["model_version"] == int(model_versions.version_of(tiny_pushed_model))


def test_the_daily_run_keeps_the_index_of_an_unchanged_catalog(tiny_daily, tiny_pushed_model):
  config, summary = tiny_daily
  version = model_versions.version_of(tiny_pushed_model)
  assert summary.index["reason"] == "the catalog did not change: the published index stands"
  assert summary.index["published_dir"] == os.path.join(config.index_dir, version)
