"""RetrievalEvaluator: Recall@K / NDCG / MRR over the full catalog vs baselines, and the blessing."""
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


class RetrievalEvaluatorSpec(types.ComponentSpec):
  PARAMETERS = {
      keys.INPUT_BASE: ExecutionParameter(type=str),
      keys.MARGIN: ExecutionParameter(type=float),
      keys.NO_CONTEXT_RATIO: ExecutionParameter(type=float),
      keys.BOOTSTRAP_SAMPLES: ExecutionParameter(type=int),
      keys.SEED: ExecutionParameter(type=int),
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
               no_context_ratio: Optional[Union[float, RuntimeParameter]] = None):
    """`margin` and `no_context_ratio`, when given (e.g. as RuntimeParameters), override config."""
    super().__init__(spec=RetrievalEvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model, input_base=input_base,
        margin=float(config.margin) if margin is None else margin,
        no_context_ratio=(float(config.no_context_ratio) if no_context_ratio is None
                          else no_context_ratio),
        bootstrap_samples=int(config.bootstrap_samples), seed=int(config.seed),
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
