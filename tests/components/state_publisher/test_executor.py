"""StatePublisher: a HistoryStates artifact becomes the store's current version, only when it
belongs to the model it is published with; into SQLite and a real redis-server alike."""
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from tfx import types
from tfx.types import standard_artifacts

from ctxrec import versions
from ctxrec.components import history_states
from ctxrec.components.state_publisher import spec_keys as keys
from ctxrec.components.state_publisher.component import PublishedStates, StatePublisher
from ctxrec.components.state_publisher.config import StatePublisherConfig
from ctxrec.components.state_publisher.executor import Executor, StatesMismatchError
from ctxrec.serving import feature_store
from ctxrec.serving.feature_store import StatesVersion

DIM = 8


def _states_artifact(folder, version: StatesVersion, users: int = 50, dimension: int = DIM,
                     seed: int = 0):
  artifact = history_states.HistoryStates()
  artifact.uri = str(folder)
  os.makedirs(artifact.uri, exist_ok=True)
  states = np.random.default_rng(seed).normal(size=(users, dimension)).astype(np.float32)
  ids = [f"user{i}" for i in range(users)]
  pq.write_table(history_states.to_table(ids, states, version),
                 os.path.join(artifact.uri, "states-00000-of-00001.parquet"))
  history_states.write_cold_start(artifact, np.full(dimension, 0.25, np.float32), version)
  history_states.set_properties(artifact, version, dimension, users)
  return artifact, dict(zip(ids, states))


def _pushed(path: str):
  model = standard_artifacts.PushedModel()
  model.uri = path
  return model


def _publish(states, store_uri, model=None):
  published = PublishedStates()
  inputs = {keys.HISTORY_STATES: [states]}
  if model is not None:
    inputs[keys.PUSHED_MODEL] = [model]
  config = StatePublisherConfig(batch_size=7).to_json()
  Executor().Do(inputs, {keys.PUBLISHED_STATES: [published]},
                {keys.STORE_URI: store_uri, keys.CONFIG: config})
  return published


def test_publishes_every_state_and_records_where(tmp_path, store_uri, save_small_model):
  version = StatesVersion("7", "2026-03-01")
  states, expected = _states_artifact(tmp_path / "s", version)
  published = _publish(states, store_uri, _pushed(save_small_model(version=7)))
  with feature_store.open_store(store_uri) as store:
    assert store.current() == version
    found = store.get_many(list(expected))
    np.testing.assert_array_equal(np.stack(found), np.stack(list(expected.values())))
    np.testing.assert_array_equal(store.cold_start(), np.full(DIM, 0.25, np.float32))
  assert published.get_string_custom_property(keys.STATES_VERSION) == "7@2026-03-01"
  assert published.get_int_custom_property(keys.ROWS) == 50
  assert published.get_int_custom_property(keys.ALREADY_PUBLISHED) == 0


def test_a_second_publish_is_idempotent(tmp_path, store_uri):
  version = StatesVersion("7", "2026-03-01")
  states, _ = _states_artifact(tmp_path / "s", version)
  _publish(states, store_uri)
  again = _publish(states, store_uri)
  assert again.get_int_custom_property(keys.ALREADY_PUBLISHED) == 1
  with feature_store.open_store(store_uri) as store:
    assert [(v.version, v.rows) for v in store.versions()] == [(version, 50)]


@pytest.mark.parametrize("model_version,model_dimension,error", [
    (8, DIM, "states of model version 7 cannot be published with model version 8"),
    (7, 16, "states have dimension 8 but model version 7 encodes histories into 16")])
def test_states_of_another_model_are_refused_and_current_is_untouched(
    tmp_path, store_uri, save_small_model, model_version, model_dimension, error):
  first, before = _states_artifact(tmp_path / "first", StatesVersion("7", "2026-03-01"))
  _publish(first, store_uri)
  second, _ = _states_artifact(tmp_path / "second", StatesVersion("7", "2026-03-02"), seed=1)
  model = _pushed(save_small_model(version=model_version, dimension=model_dimension))
  with pytest.raises(StatesMismatchError, match=error):
    _publish(second, store_uri, model)
  with feature_store.open_store(store_uri) as store:
    assert store.current() == StatesVersion("7", "2026-03-01")
    np.testing.assert_array_equal(store.get("user3"), before["user3"])
    assert store.info(StatesVersion("7", "2026-03-02")) is None


@pytest.mark.parametrize("model_version", ["/tmp/evil/7", "../7", "7.0"])
def test_a_version_that_is_a_path_is_never_published(tmp_path, store_uri, model_version):
  """The service loads SERVING_DIR/<model version>/: a version that is a path never gets in."""
  first, before = _states_artifact(tmp_path / "first", StatesVersion("7", "2026-03-01"))
  _publish(first, store_uri)
  hostile, _ = _states_artifact(tmp_path / "hostile", StatesVersion("7", "2026-03-02"), seed=1)
  hostile.set_string_custom_property(history_states.MODEL_VERSION, model_version)
  with pytest.raises(versions.VersionError, match="positive integer"):
    _publish(hostile, store_uri)
  with feature_store.open_store(store_uri) as store:
    assert [v.version for v in store.versions()] == [StatesVersion("7", "2026-03-01")]
    np.testing.assert_array_equal(store.get("user3"), before["user3"])


def test_an_unknown_store_scheme_is_a_clear_error(tmp_path):
  states, _ = _states_artifact(tmp_path / "s", StatesVersion("7", "2026-03-01"))
  with pytest.raises(feature_store.StateStoreError, match="unknown state store scheme 'mongodb'"):
    _publish(states, "mongodb://localhost/x")


def test_the_component_takes_its_config_whole_and_the_store_apart():
  component = StatePublisher(history_states=types.Channel(type=history_states.HistoryStates),
                             store_uri="redis://h:6379/0",
                             config=StatePublisherConfig(keep_versions=5))
  assert component.exec_properties[keys.STORE_URI] == "redis://h:6379/0"
  assert StatePublisherConfig.from_json(component.exec_properties[keys.CONFIG]).keep_versions == 5
  assert component.outputs[keys.PUBLISHED_STATES].type is PublishedStates
