"""StatePublisher executor: checks the states against the model, streams them into the store."""
import logging

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from ctxrec import progress
from ctxrec.components import history_states
from ctxrec.components import pushed_model
from ctxrec.components.history_state_inferrer.model_handler import EncodeHistory
from ctxrec.components.state_publisher import spec_keys as keys
from ctxrec.components.state_publisher.config import StatePublisherConfig
from ctxrec.serving import feature_store
from ctxrec.serving.feature_store import PublishResult, StatesVersion

PROGRESS_EVERY = 100_000


class StatesMismatchError(ValueError):
  """The states artifact does not belong to the model it is published with."""


def check_against_model(states, model, version: StatesVersion) -> None:
  """Refuses states of another model version or another state dimension than the model's."""
  model_version = pushed_model.model_version(model)
  if model_version != version.model_version:
    raise StatesMismatchError(
        f"{states.uri}: states of model version {version.model_version} cannot be published "
        f"with model version {model_version}; rerun the daily pipeline with that model")
  dimension = states.get_int_custom_property(history_states.DIMENSION)
  model_dimension = EncodeHistory(pushed_model.model_dir(model)).dimension
  if dimension != model_dimension:
    raise StatesMismatchError(
        f"{states.uri}: states have dimension {dimension} but model version {model_version} "
        f"encodes histories into {model_dimension}; rerun HistoryStateInferrer with this model")


class Executor(base_executor.BaseExecutor):
  """Publishes one HistoryStates artifact as one store version."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    config = StatePublisherConfig.from_json(exec_properties[keys.CONFIG])
    states = artifact_utils.get_single_instance(input_dict[keys.HISTORY_STATES])
    version = history_states.version_of(states)
    if input_dict.get(keys.PUSHED_MODEL):
      check_against_model(states, artifact_utils.get_single_instance(
          input_dict[keys.PUSHED_MODEL]), version)
    with feature_store.open_store(exec_properties[keys.STORE_URI]) as store:
      result = publish(store, states, config)
    self._record(output_dict, store.uri, result)

  @staticmethod
  def _record(output_dict, store_uri: str, result: PublishResult) -> None:
    published = artifact_utils.get_single_instance(output_dict[keys.PUBLISHED_STATES])
    published.set_string_custom_property(keys.STORE, store_uri)
    published.set_string_custom_property(keys.STATES_VERSION, str(result.version))
    published.set_int_custom_property(keys.ROWS, result.rows)
    published.set_int_custom_property(keys.ALREADY_PUBLISHED, int(result.already_published))
    published.set_string_custom_property(keys.PRUNED, ",".join(map(str, result.pruned)))


def publish(store: feature_store.StateStore, states,
            config: StatePublisherConfig = StatePublisherConfig()) -> PublishResult:
  """Loads a HistoryStates artifact into `store` as its version and makes it current."""
  version = history_states.version_of(states)
  expected = states.get_int_custom_property(history_states.USERS)
  logging.info("StatePublisher: publishing %s (%d states) to %s", version, expected,
               store.uri)
  logged = [0]

  def report(written: int) -> None:
    if written - logged[0] >= PROGRESS_EVERY or written == expected:
      progress.report("StatePublisher: %d / %d states written", written, expected)
      logged[0] = written

  result = store.publish(
      version, states.get_int_custom_property(history_states.DIMENSION),
      history_states.read_cold_start(states),
      history_states.read_states(states, config.batch_size), expected_rows=expected,
      keep=config.keep_versions, progress=report)
  logging.info("StatePublisher: %s is current in %s (%d states%s)", version,
               store.uri, result.rows,
               "; it was already published" if result.already_published else "")
  return result
