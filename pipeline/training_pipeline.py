"""The training pipeline's one definition, shared by the local runner and cluster compilers."""
import dataclasses
from typing import List, Optional, Union

from tfx import v1 as tfx

from ctxrec.components.anomalies_gate.component import AnomaliesGate
from ctxrec.components.index_builder.component import IndexBuilder
from ctxrec.components.pseudo_context.component import PseudoContextAugmenter
from ctxrec.components.retrieval_evaluator.component import RetrievalEvaluator
from ctxrec.components.schema_gen.component import ExamplesSchemaGen
from ctxrec.components.sequence_example_gen.component import SequenceExampleGen
from ctxrec.pipeline.config import PipelineConfig
from ctxrec.transform import features

PREPROCESSING_FN = "ctxrec.transform.preprocessing.preprocessing_fn"
RUN_FN = "ctxrec.trainer.run.run_fn"
HISTORY_ONLY_TRAINER = "HistoryOnlyTrainer"
Parameter = tfx.dsl.experimental.RuntimeParameter


@dataclasses.dataclass(frozen=True)
class RunValues:
  """What a cluster run may set at submission: RuntimeParameters there, plain values locally.

  A proto can only be a RuntimeParameter as a whole (its JSON text), hence `train_args`.
  """
  data_root: Union[str, Parameter]  # SequenceExampleGen's and RetrievalEvaluator's input_base
  train_args: Union[tfx.proto.TrainArgs, Parameter]  # both Trainers' steps
  margin: Union[float, Parameter]
  no_context_ratio: Union[float, Parameter]


def plain_values(config: PipelineConfig) -> RunValues:
  """The config's values: what a local run uses and a compiled pipeline's defaults."""
  return RunValues(data_root=config.data_dir,
                   train_args=tfx.proto.TrainArgs(num_steps=config.train_steps),
                   margin=float(config.evaluator.margin),
                   no_context_ratio=float(config.evaluator.no_context_ratio))


def create_pipeline(config: PipelineConfig, values: Optional[RunValues] = None,
                    input_fingerprint: Optional[str] = None,
                    metadata_connection_config=None) -> tfx.dsl.Pipeline:
  """Examples → validation gate → vocabularies + pseudo-context → two Trainers → evaluate → push
  → index."""
  values = values or plain_values(config)
  example_gen = SequenceExampleGen(
      input_base=values.data_root, config=config.example_gen,
      input_fingerprint=input_fingerprint)
  statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
  schema_gen = ExamplesSchemaGen(config.example_gen.demographic_columns, config.base_schema)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
  anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])
  components = [example_gen, statistics_gen, schema_gen, example_validator, anomalies_gate]
  if not config.validate_only:
    components += _training(config, values, example_gen, schema_gen, anomalies_gate,
                            input_fingerprint)
  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=components,
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(config.beam_pipeline_args))


def _training(config: PipelineConfig, values: RunValues, example_gen, schema_gen,
              anomalies_gate, input_fingerprint: Optional[str]) -> List:
  """Everything after the gate: both models, evaluation, push, the pushed model's index."""
  transform = tfx.components.Transform(
      examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
      preprocessing_fn=PREPROCESSING_FN, materialize=False, disable_statistics=True,
      splits_config=tfx.proto.SplitsConfig(analyze=[features.TRAIN]))
  transform.add_upstream_node(anomalies_gate)  # bad data never reaches the vocabularies
  augmenter = PseudoContextAugmenter(examples=example_gen.outputs["examples"],
                                     config=config.pseudo_context)
  augmenter.add_upstream_node(anomalies_gate)
  trainers = [_trainer(values, config.trainer, augmenter, transform, schema_gen)]
  history_config = dataclasses.replace(config.trainer, use_context=False)
  trainers.append(_trainer(values, history_config, augmenter, transform, schema_gen).with_id(
      HISTORY_ONLY_TRAINER))
  evaluator = RetrievalEvaluator(
      examples=example_gen.outputs["examples"], model=trainers[0].outputs["model"],
      baseline_model=trainers[1].outputs["model"], input_base=values.data_root,
      config=config.evaluator, margin=values.margin, no_context_ratio=values.no_context_ratio,
      context_mode=config.trainer.context_mode)
  pusher = tfx.components.Pusher(
      model=trainers[0].outputs["model"], model_blessing=evaluator.outputs["blessing"],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_dir)))
  index_builder = IndexBuilder(
      pushed_model=pusher.outputs["pushed_model"], input_base=values.data_root,
      index_root=config.index_dir, examples=example_gen.outputs["examples"],
      config=config.index_builder, input_fingerprint=input_fingerprint)
  return [transform, augmenter, *trainers, evaluator, pusher, index_builder]


def _trainer(values: RunValues, trainer_config, augmenter, transform, schema_gen):
  return tfx.components.Trainer(
      run_fn=RUN_FN, examples=augmenter.outputs["augmented_examples"],
      transform_graph=transform.outputs["transform_graph"], schema=schema_gen.outputs["schema"],
      train_args=values.train_args,
      eval_args=tfx.proto.EvalArgs(num_steps=0),
      custom_config=trainer_config.to_custom_config())
