"""HistoryStateInferrer: the daily bulk inference of `encode_history` for every user."""
from typing import Optional, Union

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration.data_types import RuntimeParameter
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from ctxrec.components.history_state_inferrer import executor
from ctxrec.components.history_state_inferrer import spec_keys as keys
from ctxrec.components.history_state_inferrer.config import HistoryStateInferrerConfig
from ctxrec.components.history_states import HistoryStates


class HistoryStateInferrerSpec(types.ComponentSpec):
  PARAMETERS = {
      keys.INPUT_BASE: ExecutionParameter(type=str),
      keys.INPUT_FINGERPRINT: ExecutionParameter(type=str, optional=True),
      keys.SERVING_DATE: ExecutionParameter(type=str, optional=True),
      keys.CONFIG: ExecutionParameter(type=str),
  }
  INPUTS = {keys.PUSHED_MODEL: ChannelParameter(type=standard_artifacts.PushedModel)}
  OUTPUTS = {keys.HISTORY_STATES: ChannelParameter(type=HistoryStates)}


class HistoryStateInferrer(base_beam_component.BaseBeamComponent):
  """Writes the history state of every user with a conversion before `serving_date`.

  TFX's BulkInferrer cannot: it needs one serialized-Example input and writes PredictionLogs,
  not states keyed by user. `serving_date` (YYYY-MM-DD, UTC) is the day the states serve; empty
  means the day after the last event. `input_fingerprint` invalidates the cache when the
  tables change (they are not artifacts).
  """

  SPEC_CLASS = HistoryStateInferrerSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, input_base: Union[str, RuntimeParameter], pushed_model: types.BaseChannel,
               serving_date: Union[str, RuntimeParameter] = "",
               config: HistoryStateInferrerConfig = HistoryStateInferrerConfig(),
               input_fingerprint: Optional[str] = None):
    super().__init__(spec=HistoryStateInferrerSpec(
        input_base=input_base, input_fingerprint=input_fingerprint, serving_date=serving_date,
        config=config.to_json(), pushed_model=pushed_model,
        history_states=types.Channel(type=HistoryStates)))
