"""PseudoContextAugmenter: gives train examples a session around a view derived from their label."""
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
  """Gives every train example of `examples` a session; eval passes through unchanged.

  A train example keeps its logged session; one without gets a pseudo-session around a view
  derived from its label, shaped like the logged ones (their lengths, the label view's position,
  on- and off-category views, gaps), so the model learns to use a session on the share of
  conversions that never had one. The output `augmented_examples` has the same
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
