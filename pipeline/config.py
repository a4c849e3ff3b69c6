"""Typed configuration of a pipeline run, with the embedded defaults `make run` uses."""
import dataclasses
import os
from typing import Optional, Tuple

from ctxrec.components.history_state_inferrer.config import HistoryStateInferrerConfig
from ctxrec.components.index_builder.config import IndexBuilderConfig
from ctxrec.components.pseudo_context.config import PseudoContextConfig
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig
from ctxrec.components.state_publisher.config import StatePublisherConfig
from ctxrec.serving.feature_store.sqlite_store import sqlite_uri
from ctxrec.serving.tf_serving.model_config import MODEL_NAME
from ctxrec.trainer.config import DEFAULT_TRAIN_STEPS, TrainerConfig

PIPELINE_NAME = "ctxrec"
DAILY_PIPELINE_NAME = "ctxrec-daily"
STATES_FILE = "states.sqlite"  # the embedded state store under the output folder
# Single-process DirectRunner; pass --direct_running_mode=multi_processing to use more cores.
DEFAULT_BEAM_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")


class _RunLocation:
  """Where a run keeps its artifacts, metadata and catalog indexes: under its output folder,
  unless a cluster's pipeline root (or index folder) is given."""
  output_dir: str
  pipeline_root_uri: Optional[str]
  index_uri: Optional[str]

  @property
  def index_dir(self) -> str:
    """Published catalog indexes: index_dir/<model version>/ (serving/index.py's layout)."""
    return self.index_uri or os.path.join(self.output_dir, "serving", "index")

  @property
  def pipeline_root(self) -> str:
    return self.pipeline_root_uri or os.path.join(self.output_dir, "pipeline_root")

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_dir, "metadata.sqlite")


@dataclasses.dataclass(frozen=True)
class PipelineConfig(_RunLocation):
  """Where the data is, where outputs go, and how each stage is parameterised."""
  data_dir: str
  output_dir: str
  example_gen: SequenceExampleGenConfig = SequenceExampleGenConfig()
  pseudo_context: PseudoContextConfig = PseudoContextConfig()
  trainer: TrainerConfig = TrainerConfig()
  train_steps: int = DEFAULT_TRAIN_STEPS
  evaluator: EvaluatorConfig = EvaluatorConfig()
  index_builder: IndexBuilderConfig = IndexBuilderConfig()
  beam_pipeline_args: Tuple[str, ...] = DEFAULT_BEAM_ARGS
  pipeline_name: str = PIPELINE_NAME
  enable_cache: bool = True
  validate_only: bool = False  # stop after the data checks (ingestion half only)
  base_schema: Optional[str] = None  # schema text replacing pipeline/schema/schema.pbtxt
  pipeline_root_uri: Optional[str] = None  # a cluster's root (gs://...); default OUT/pipeline_root
  serving_uri: Optional[str] = None  # where pushed models go; default OUT/serving/<model>
  index_uri: Optional[str] = None  # where indexes go; default OUT/serving/index

  def __post_init__(self):
    views = {"example_gen": self.example_gen.session_views,
             "pseudo_context": self.pseudo_context.session_views,
             "trainer": self.trainer.session_views}
    if len(set(views.values())) > 1:
      raise ValueError(f"session_views differs between stages ({views}): the examples, the "
                       f"pseudo-sessions and the model must keep as many views; set one value")

  @property
  def serving_dir(self) -> str:
    """Pushed models in TF Serving layout: serving_dir/<integer version>/saved_model.pb."""
    return self.serving_uri or serving_dir(self.output_dir)

  @property
  def report_dir(self) -> str:
    return os.path.join(self.output_dir, "report")


@dataclasses.dataclass(frozen=True)
class DailyPipelineConfig(_RunLocation):
  """The daily job: one pushed model, the tables as of the serving day, the state store.

  It shares the output folder (pipeline root and MLMD) with the training runs, so lineage runs
  from the events through the model to the published states.
  """
  data_dir: str
  output_dir: str
  model_dir: str  # one pushed version: SERVING_DIR/<integer version>
  store_uri: str  # sqlite:///PATH or redis://HOST:PORT/DB
  serving_date: str = ""  # YYYY-MM-DD; empty: the day after the last event
  inferrer: HistoryStateInferrerConfig = HistoryStateInferrerConfig()
  publisher: StatePublisherConfig = StatePublisherConfig()
  index_builder: IndexBuilderConfig = IndexBuilderConfig()
  beam_pipeline_args: Tuple[str, ...] = DEFAULT_BEAM_ARGS
  pipeline_name: str = DAILY_PIPELINE_NAME
  # Publishing writes to a store outside MLMD: a rerun must publish again (say, after a Redis
  # restart lost the states), so the daily run reuses no cached result unless asked.
  enable_cache: bool = False
  pipeline_root_uri: Optional[str] = None
  index_uri: Optional[str] = None  # where indexes go; default OUT/serving/index


def serving_dir(output_dir: str) -> str:
  """Pushed models of a local run: OUT/serving/<model>/<version>."""
  return os.path.join(output_dir, "serving", MODEL_NAME)


def default_store_uri(output_dir: str) -> str:
  """The embedded state store of a local run: sqlite:///OUT/states.sqlite."""
  return sqlite_uri(os.path.join(output_dir, STATES_FILE))
