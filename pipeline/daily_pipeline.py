"""The daily pipeline's one definition: a pushed model and today's tables → published states."""
import dataclasses
from typing import Optional, Union

from tfx import v1 as tfx

from ctxrec.components.history_state_inferrer import spec_keys as inferrer_keys
from ctxrec.components.history_state_inferrer.component import HistoryStateInferrer
from ctxrec.components.index_builder.component import IndexBuilder
from ctxrec.components.state_publisher.component import StatePublisher
from ctxrec.pipeline.config import DailyPipelineConfig

MODEL_IMPORTER = "PushedModelImporter"
Parameter = tfx.dsl.experimental.RuntimeParameter


@dataclasses.dataclass(frozen=True)
class DailyRunValues:
  """What a cluster run sets at submission: RuntimeParameters there, plain values locally."""
  data_root: Union[str, Parameter]  # the tables as of the serving day
  model_uri: Union[str, Parameter]  # a pushed version directory SERVING_DIR/<version>
  serving_date: Union[str, Parameter]  # YYYY-MM-DD; empty: the day after the last event
  store_uri: Union[str, Parameter]


def plain_values(config: DailyPipelineConfig) -> DailyRunValues:
  return DailyRunValues(data_root=config.data_dir, model_uri=config.model_dir,
                        serving_date=config.serving_date, store_uri=config.store_uri)


def create_daily_pipeline(config: DailyPipelineConfig, values: Optional[DailyRunValues] = None,
                          input_fingerprint: Optional[str] = None,
                          metadata_connection_config=None) -> tfx.dsl.Pipeline:
  """Import the pushed model → HistoryStateInferrer → StatePublisher (checked against the model),
  and the catalog's index again (the catalog changes daily; an unchanged one keeps its index)."""
  values = values or plain_values(config)
  model = tfx.dsl.Importer(source_uri=values.model_uri,
                           artifact_type=tfx.types.standard_artifacts.PushedModel,
                           reimport=False).with_id(MODEL_IMPORTER)
  inferrer = HistoryStateInferrer(
      input_base=values.data_root, pushed_model=model.outputs["result"],
      serving_date=values.serving_date, config=config.inferrer,
      input_fingerprint=input_fingerprint)
  publisher = StatePublisher(
      history_states=inferrer.outputs[inferrer_keys.HISTORY_STATES],
      pushed_model=model.outputs["result"], store_uri=values.store_uri, config=config.publisher)
  index_builder = IndexBuilder(
      pushed_model=model.outputs["result"], input_base=values.data_root,
      index_root=config.index_dir,
      history_states=inferrer.outputs[inferrer_keys.HISTORY_STATES], config=config.index_builder,
      input_fingerprint=input_fingerprint)
  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=[model, inferrer, publisher, index_builder],
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(config.beam_pipeline_args))
