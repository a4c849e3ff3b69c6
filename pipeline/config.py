"""Typed configuration of a pipeline run, with the embedded defaults `make run` uses."""
import dataclasses
import os
from typing import Optional, Tuple

from ctxrec.components.pseudo_context.config import PseudoContextConfig
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig
from ctxrec.trainer.config import TrainerConfig

PIPELINE_NAME = "ctxrec"
MODEL_NAME = "ctxrec"  # the TF Serving model name
# Single-process DirectRunner; pass --direct_running_mode=multi_processing to use more cores.
DEFAULT_BEAM_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Where the data is, where outputs go, and how each stage is parameterised."""
  data_dir: str
  output_dir: str
  example_gen: SequenceExampleGenConfig = SequenceExampleGenConfig()
  pseudo_context: PseudoContextConfig = PseudoContextConfig()
  trainer: TrainerConfig = TrainerConfig()
  train_steps: int = 1000
  evaluator: EvaluatorConfig = EvaluatorConfig()
  beam_pipeline_args: Tuple[str, ...] = DEFAULT_BEAM_ARGS
  pipeline_name: str = PIPELINE_NAME
  enable_cache: bool = True
  validate_only: bool = False  # stop after the data checks (ingestion half only)
  base_schema: Optional[str] = None  # schema text replacing pipeline/schema/schema.pbtxt
  pipeline_root_uri: Optional[str] = None  # a cluster's root (gs://...); default OUT/pipeline_root
  serving_uri: Optional[str] = None  # where pushed models go; default OUT/serving/<model>

  @property
  def pipeline_root(self) -> str:
    return self.pipeline_root_uri or os.path.join(self.output_dir, "pipeline_root")

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_dir, "metadata.sqlite")

  @property
  def serving_dir(self) -> str:
    """Pushed models in TF Serving layout: serving_dir/<integer version>/saved_model.pb."""
    return self.serving_uri or os.path.join(self.output_dir, "serving", MODEL_NAME)

  @property
  def report_dir(self) -> str:
    return os.path.join(self.output_dir, "report")
