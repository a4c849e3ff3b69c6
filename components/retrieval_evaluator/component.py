"""RetrievalEvaluator: Recall@K / NDCG / MRR over the full catalog vs baselines; the blessing."""
import dataclasses
from typing import Optional, Union

from tfx import types
from tfx.orchestration.data_types import RuntimeParameter
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from ctxrec.components.retrieval_evaluator import executor
from ctxrec.components.retrieval_evaluator import spec_keys as keys
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig


def _given(value, default):
  """A component argument when given (a value or a RuntimeParameter), else the config's."""
  return default if value is None else value


class RetrievalEvaluatorSpec(types.ComponentSpec):
  PARAMETERS = {
      keys.INPUT_BASE: ExecutionParameter(type=str),
      keys.MARGIN: ExecutionParameter(type=float),
      keys.NO_CONTEXT_FLOOR_MARGIN: ExecutionParameter(type=float),
      keys.NO_CONTEXT_RATIO: ExecutionParameter(type=float),
      keys.BOOTSTRAP_SAMPLES: ExecutionParameter(type=int),
      keys.SEED: ExecutionParameter(type=int),
      keys.CONTEXT_MODE: ExecutionParameter(type=str),
  }
  INPUTS = {
      keys.EXAMPLES: ChannelParameter(type=standard_artifacts.Examples),
      keys.MODEL: ChannelParameter(type=standard_artifacts.Model),
      keys.BASELINE_MODEL: ChannelParameter(type=standard_artifacts.Model),
  }
  OUTPUTS = {
      keys.EVALUATION: ChannelParameter(type=standard_artifacts.ModelEvaluation),
      keys.BLESSING: ChannelParameter(type=standard_artifacts.ModelBlessing),
  }


class RetrievalEvaluator(base_component.BaseComponent):
  """Evaluates `model` (contextual) against `baseline_model` (history-only) and baselines.

  Reads the catalog, train-period conversions and (when present) the generator's ground truth
  from `input_base`; writes summary.json, report.md and recall_at_k.png to `evaluation`.
  """

  SPEC_CLASS = RetrievalEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               baseline_model: types.BaseChannel, input_base: Union[str, RuntimeParameter],
               config: EvaluatorConfig = EvaluatorConfig(),
               margin: Optional[Union[float, RuntimeParameter]] = None,
               no_context_ratio: Optional[Union[float, RuntimeParameter]] = None,
               no_context_floor_margin: Optional[Union[float, RuntimeParameter]] = None,
               context_mode: Optional[str] = None):
    """`margin`, `no_context_ratio` and `no_context_floor_margin`, when given (e.g. as
    RuntimeParameters), override config; so does `context_mode` (the Trainer's)."""
    if context_mode is not None:
      config = dataclasses.replace(config, context_mode=context_mode)  # validates it
    super().__init__(spec=RetrievalEvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model, input_base=input_base,
        margin=_given(margin, float(config.margin)),
        no_context_floor_margin=_given(no_context_floor_margin,
                                       float(config.no_context_floor_margin)),
        no_context_ratio=_given(no_context_ratio, float(config.no_context_ratio)),
        bootstrap_samples=int(config.bootstrap_samples), seed=int(config.seed),
        context_mode=config.context_mode,
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
