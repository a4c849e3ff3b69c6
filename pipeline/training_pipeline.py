"""The training pipeline's one definition, shared by the local runner and cluster compilers."""
import dataclasses
from typing import List, Optional

from tfx import v1 as tfx

from ctxrec.components.anomalies_gate.component import AnomaliesGate
from ctxrec.components.pseudo_context.component import PseudoContextAugmenter
from ctxrec.components.retrieval_evaluator.component import RetrievalEvaluator
from ctxrec.components.sequence_example_gen.component import SequenceExampleGen
from ctxrec.pipeline.config import PipelineConfig
from ctxrec.transform import features

PREPROCESSING_FN = "ctxrec.transform.preprocessing.preprocessing_fn"
RUN_FN = "ctxrec.trainer.run.run_fn"
HISTORY_ONLY_TRAINER = "HistoryOnlyTrainer"


def create_pipeline(config: PipelineConfig, schema_path: str,
                    input_fingerprint: Optional[str] = None,
                    metadata_connection_config=None) -> tfx.dsl.Pipeline:
  """Examples → validation gate → vocabularies + pseudo-context → two Trainers → evaluate → push."""
  example_gen = SequenceExampleGen(
      input_base=config.data_dir, config=config.example_gen,
      input_fingerprint=input_fingerprint)
  statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
  schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
  anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])
  components = [example_gen, statistics_gen, schema_gen, example_validator, anomalies_gate]
  if not config.validate_only:
    components += _training(config, example_gen, schema_gen, anomalies_gate)
  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=components,
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(config.beam_pipeline_args))


def _training(config: PipelineConfig, example_gen, schema_gen, anomalies_gate) -> List:
  """Everything after the gate: contextual and history-only models, evaluation, push."""
  transform = tfx.components.Transform(
      examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
      preprocessing_fn=PREPROCESSING_FN, materialize=False, disable_statistics=True,
      splits_config=tfx.proto.SplitsConfig(analyze=[features.TRAIN]))
  transform.add_upstream_node(anomalies_gate)  # bad data never reaches the vocabularies
  augmenter = PseudoContextAugmenter(examples=example_gen.outputs["examples"],
                                     config=config.pseudo_context)
  augmenter.add_upstream_node(anomalies_gate)
  trainers = [_trainer(config, config.trainer, augmenter, transform, schema_gen)]
  history_config = dataclasses.replace(config.trainer, use_context=False)
  trainers.append(_trainer(config, history_config, augmenter, transform, schema_gen).with_id(
      HISTORY_ONLY_TRAINER))
  evaluator = RetrievalEvaluator(
      examples=example_gen.outputs["examples"], model=trainers[0].outputs["model"],
      baseline_model=trainers[1].outputs["model"], input_base=config.data_dir,
      config=config.evaluator)
  pusher = tfx.components.Pusher(
      model=trainers[0].outputs["model"], model_blessing=evaluator.outputs["blessing"],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_dir)))
  return [transform, augmenter, *trainers, evaluator, pusher]


def _trainer(config: PipelineConfig, trainer_config, augmenter, transform, schema_gen):
  return tfx.components.Trainer(
      run_fn=RUN_FN, examples=augmenter.outputs["augmented_examples"],
      transform_graph=transform.outputs["transform_graph"], schema=schema_gen.outputs["schema"],
      train_args=tfx.proto.TrainArgs(num_steps=config.train_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=0),
      custom_config=trainer_config.to_custom_config())
