"""StatePublisher: loads a HistoryStates artifact into a state store, then flips `current`."""
from typing import Optional, Union

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration.data_types import RuntimeParameter
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from ctxrec.components.history_states import HistoryStates
from ctxrec.components.state_publisher import executor
from ctxrec.components.state_publisher import spec_keys as keys
from ctxrec.components.state_publisher.config import StatePublisherConfig


class PublishedStates(types.Artifact):
  """Where a states version was published: the store and the version (like PushedModel)."""
  TYPE_NAME = "ctxrec.PublishedStates"  # also its import path, as KFP v2 needs for custom types


class StatePublisherSpec(types.ComponentSpec):
  PARAMETERS = {
      keys.STORE_URI: ExecutionParameter(type=str),
      keys.CONFIG: ExecutionParameter(type=str),
  }
  INPUTS = {
      keys.HISTORY_STATES: ChannelParameter(type=HistoryStates),
      keys.PUSHED_MODEL: ChannelParameter(type=standard_artifacts.PushedModel, optional=True),
  }
  OUTPUTS = {keys.PUBLISHED_STATES: ChannelParameter(type=PublishedStates)}


class StatePublisher(base_component.BaseComponent):
  """Pusher-like: writes every state beside the current version and makes it current only
  after every row is written and counted. Given `pushed_model`, it first checks the states
  were computed by that model version with its state dimension.
  """

  SPEC_CLASS = StatePublisherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, history_states: types.BaseChannel, store_uri: Union[str, RuntimeParameter],
               pushed_model: Optional[types.BaseChannel] = None,
               config: StatePublisherConfig = StatePublisherConfig()):
    super().__init__(spec=StatePublisherSpec(
        history_states=history_states, pushed_model=pushed_model, store_uri=store_uri,
        config=config.to_json(), published_states=types.Channel(type=PublishedStates)))
