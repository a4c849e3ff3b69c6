"""SequenceExampleGen: the user's event logs → one tf.Example per conversion, split by time."""
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from ctxrec.components.sequence_example_gen import executor
from ctxrec.components.sequence_example_gen import spec_keys as keys
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig


class SequenceExampleGenSpec(types.ComponentSpec):
  PARAMETERS = {
      keys.INPUT_BASE: ExecutionParameter(type=str),
      keys.INPUT_FINGERPRINT: ExecutionParameter(type=str, optional=True),
      keys.CONFIG: ExecutionParameter(type=str),  # SequenceExampleGenConfig as JSON
  }
  INPUTS = {}
  OUTPUTS = {keys.EXAMPLES: ChannelParameter(type=standard_artifacts.Examples)}


class SequenceExampleGen(base_beam_component.BaseBeamComponent):
  """Reads events, items and users from `input_base` and emits train/eval Examples.

  `input_fingerprint` (sizes and modification times of the input files) makes a cached
  result invalid when the data changes, since the tables are not TFX artifacts.
  """

  SPEC_CLASS = SequenceExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, input_base: str, config: SequenceExampleGenConfig = SequenceExampleGenConfig(),
               input_fingerprint: Optional[str] = None):
    spec = SequenceExampleGenSpec(
        input_base=input_base,
        input_fingerprint=input_fingerprint,
        config=config.to_json(),
        examples=types.Channel(type=standard_artifacts.Examples))
    super().__init__(spec=spec)

