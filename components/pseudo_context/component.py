"""PseudoContextAugmenter: gives train examples a context derived from their positive label."""
from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from ctxrec.components.pseudo_context import executor
from ctxrec.components.pseudo_context import spec_keys as keys
from ctxrec.components.pseudo_context.config import PseudoContextConfig


class PseudoContextAugmenterSpec(types.ComponentSpec):
  PARAMETERS = {keys.CONFIG: ExecutionParameter(type=str)}
  INPUTS = {keys.EXAMPLES: ChannelParameter(type=standard_artifacts.Examples)}
  OUTPUTS = {keys.AUGMENTED_EXAMPLES: ChannelParameter(type=standard_artifacts.Examples)}


class PseudoContextAugmenter(base_beam_component.BaseBeamComponent):
  """Gives every train example of `examples` a context; eval passes through unchanged.

  A train example keeps its logged context; one without gets pseudo-context derived from its
  label, shaped by the statistics of the logged ones, so the model learns to use a context on
  the share of conversions that never had one. The output `augmented_examples` has the same
  splits and file format as the input.
  """

  SPEC_CLASS = PseudoContextAugmenterSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel,
               config: PseudoContextConfig = PseudoContextConfig()):
    spec = PseudoContextAugmenterSpec(
        examples=examples,
        config=config.to_json(),
        augmented_examples=types.Channel(type=standard_artifacts.Examples))
    super().__init__(spec=spec)
