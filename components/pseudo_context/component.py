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
  PARAMETERS = {
      keys.RATE: ExecutionParameter(type=float),
      keys.P_SUBSTITUTE: ExecutionParameter(type=float),
      keys.CONFIDENCE_JITTER: ExecutionParameter(type=float),
      keys.P_DROP_SECONDARY: ExecutionParameter(type=float),
      keys.MODE: ExecutionParameter(type=str),
      keys.SEED: ExecutionParameter(type=int),
  }
  INPUTS = {keys.EXAMPLES: ChannelParameter(type=standard_artifacts.Examples)}
  OUTPUTS = {keys.AUGMENTED_EXAMPLES: ChannelParameter(type=standard_artifacts.Examples)}


class PseudoContextAugmenter(base_beam_component.BaseBeamComponent):
  """Writes pseudo-context into the train split of `examples`; eval passes through unchanged.

  Train examples have no request context, so the model could not learn to use one otherwise.
  The output `augmented_examples` has the same splits and file format as the input.
  """

  SPEC_CLASS = PseudoContextAugmenterSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel,
               config: PseudoContextConfig = PseudoContextConfig()):
    spec = PseudoContextAugmenterSpec(
        examples=examples,
        rate=float(config.rate),
        p_substitute=float(config.p_substitute),
        confidence_jitter=float(config.confidence_jitter),
        p_drop_secondary=float(config.p_drop_secondary),
        mode=config.mode,
        seed=int(config.seed),
        augmented_examples=types.Channel(type=standard_artifacts.Examples))
    super().__init__(spec=spec)
