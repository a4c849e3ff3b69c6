"""Runs the training and daily pipelines on this machine: LocalDagRunner, SQLite MLMD store."""
import dataclasses
import json
import logging
import os
import time
from typing import Callable, Dict, List, Optional, Tuple

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from ctxrec.components import pushed_model
from ctxrec.components.index_builder import spec_keys as index_keys
from ctxrec.components.index_builder.component import CatalogIndex
from ctxrec.components.retrieval_evaluator import report
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen import spec_keys as example_gen_keys
from ctxrec.components.state_publisher import spec_keys as publisher_keys
from ctxrec.components.state_publisher.component import PublishedStates
from ctxrec.pipeline import preflight
from ctxrec.pipeline.config import DailyPipelineConfig, PipelineConfig
from ctxrec.pipeline.daily_pipeline import create_daily_pipeline
from ctxrec.pipeline.training_pipeline import create_pipeline
from ctxrec.serving import feature_store
from ctxrec.serving.index import index_dir
from ctxrec.serving.index.manifest import IndexDirError
from ctxrec.transform.features import TRAIN

_NODE_CONTEXT = "node"
_PIPELINE_CONTEXT = "pipeline"
_STATES = {metadata_store_pb2.Execution.COMPLETE: "ran",
           metadata_store_pb2.Execution.CACHED: "cached",
           metadata_store_pb2.Execution.FAILED: "failed"}


@dataclasses.dataclass
class ComponentRun:
  component: str
  state: str
  seconds: float


@dataclasses.dataclass
class RunSummary:
  """What a local run did: per-component state and time, example counts, the evaluation."""
  components: List[ComponentRun]
  examples: Dict[str, int]
  seconds: float
  report: Optional[dict] = None  # OUT/report/summary.json, when the run evaluated a model
  inputs: Optional[preflight.InputSummary] = None  # the checks' findings: drops, warnings


@dataclasses.dataclass
class DailySummary:
  """What a daily run did: per-component state and time, and the version it published."""
  components: List[ComponentRun]
  seconds: float
  states_version: str
  states: int
  store: str
  already_published: bool
  index: Optional[dict] = None  # the newest IndexBuilder run (reason, published_dir, manifest)


def run_local(config: PipelineConfig,
              on_checked: Optional[Callable[[preflight.InputSummary], None]] = None) -> RunSummary:
  """Checks the inputs first (a failure leaves --out as it was), calls `on_checked` (e.g. to
  attach the run log), then runs the pipeline under config.output_dir; unchanged inputs reuse
  cached results. A rejection inside the pipeline removes what this run created."""
  checked = preflight.check_inputs(config)
  snapshot = preflight.OutputSnapshot(config.output_dir)
  try:
    if on_checked is not None:
      on_checked(checked)
    for line in checked.warnings:  # SequenceExampleGen logs the drops themselves
      logging.info("input checks: %s", line)  # the console got them from on_checked
    return _run_training(config, checked)
  except Exception as exc:  # pylint: disable=broad-except
    if preflight.find_in_chain(exc, preflight.REJECTIONS) is not None:
      snapshot.remove_new()
    raise


def _run_training(config: PipelineConfig, checked: preflight.InputSummary) -> RunSummary:
  connection = _connection(config.output_dir, config.metadata_path)
  pipeline = create_pipeline(config, input_fingerprint=input_tables.fingerprint(checked.tables),
                             metadata_connection_config=connection)
  runs, seconds = _run(pipeline, connection)
  summary = RunSummary(runs, _example_counts(connection), seconds, inputs=checked)
  if not config.validate_only:
    summary.report = _publish_report(connection, config.report_dir, config.pipeline_name,
                                     checked.drops())
  preflight.write_input_summary(checked, config.report_dir)
  return summary


def run_daily_local(config: DailyPipelineConfig) -> DailySummary:
  """Runs the daily pipeline: states of the serving day, published to the store."""
  preflight.check_output_dir(config.output_dir)
  tables = input_tables.locate_tables(config.data_dir)
  feature_store.open_store(config.store_uri).close()  # a bad store fails before any work
  connection = _connection(config.output_dir, config.metadata_path)
  pipeline = create_daily_pipeline(config, input_fingerprint=input_tables.fingerprint(tables),
                                   metadata_connection_config=connection)
  runs, seconds = _run(pipeline, connection)
  store = metadata_store.MetadataStore(connection)
  published = _latest(store, PublishedStates.TYPE_NAME, config.pipeline_name)
  properties = published.custom_properties
  return DailySummary(runs, seconds, properties[publisher_keys.STATES_VERSION].string_value,
                      properties[publisher_keys.ROWS].int_value,
                      properties[publisher_keys.STORE].string_value,
                      bool(properties[publisher_keys.ALREADY_PUBLISHED].int_value),
                      _index_summary(store, config.pipeline_name))


def _connection(output_dir: str, metadata_path: str):
  os.makedirs(output_dir, exist_ok=True)
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)


def _run(pipeline, connection) -> Tuple[List[ComponentRun], float]:
  """Runs a pipeline with LocalDagRunner; returns what each component did and the wall time."""
  started = time.time()
  before = _execution_ids(connection)
  LocalDagRunner().run(pipeline)
  return _component_runs(connection, before), time.time() - started


def _execution_ids(connection) -> set:
  return {e.id for e in metadata_store.MetadataStore(connection).get_executions()}


def _component_runs(connection, before: set) -> List[ComponentRun]:
  store = metadata_store.MetadataStore(connection)
  runs = []
  for execution in sorted(store.get_executions(), key=lambda e: e.id):
    if execution.id in before:
      continue
    elapsed = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1e3
    runs.append(ComponentRun(_node_id(store, execution.id),
                             _STATES.get(execution.last_known_state, "unknown"), elapsed))
  return runs


def _example_counts(connection) -> Dict[str, int]:
  store = metadata_store.MetadataStore(connection)
  examples = max((a for a in store.get_artifacts_by_type("Examples")  # SequenceExampleGen's
                  if example_gen_keys.example_count(TRAIN) in a.custom_properties),
                 key=lambda a: a.id)
  prefix = example_gen_keys.EXAMPLE_COUNT_PREFIX
  return {name[len(prefix):]: value.int_value
          for name, value in examples.custom_properties.items() if name.startswith(prefix)}


def _node_id(store, execution_id: int) -> str:
  """The component id (e.g. HistoryOnlyTrainer) from the execution's `node` context."""
  for context in store.get_contexts_by_execution(execution_id):
    if context.type == _NODE_CONTEXT:
      return context.name.rsplit(".", 1)[-1]  # "<pipeline>.<node id>"
  return "unknown"


def _latest(store, type_name: str, pipeline_name: str):
  """The newest artifact of a type made by one pipeline (training and daily share MLMD)."""
  context = store.get_context_by_type_and_name(_PIPELINE_CONTEXT, pipeline_name)
  artifacts = [a for a in (store.get_artifacts_by_context(context.id) if context else [])
               if a.type == type_name]
  return max(artifacts, key=lambda a: a.id) if artifacts else None


def _publish_report(connection, report_dir: str, pipeline_name: str,
                    drops: Dict[str, object]) -> Optional[dict]:
  """Copies the evaluation's report to OUT/report with the pushed model version and the input
  checks' drop counts filled in."""
  store = metadata_store.MetadataStore(connection)
  evaluation = _latest(store, "ModelEvaluation", pipeline_name)
  if evaluation is None:
    return None
  with open(os.path.join(evaluation.uri, report.SUMMARY_FILE)) as handle:
    summary = json.load(handle)
  pushed = _latest(store, "PushedModel", pipeline_name)  # the Pusher's, not a daily import
  if summary["blessed"] and pushed is not None and (
      pushed_model.PUSHED_VERSION in pushed.custom_properties):
    summary["model_version"] = int(
        pushed.custom_properties[pushed_model.PUSHED_VERSION].string_value)
  summary["index"] = _index_summary(store, pipeline_name)
  summary[preflight.DROPS] = drops
  report.write_report(summary, report_dir)
  return summary


def _index_summary(store, pipeline_name: str) -> Optional[dict]:
  """The pipeline's newest IndexBuilder run: why it did what it did, and the manifest of the
  index it published (or built and did not publish)."""
  index = _latest(store, CatalogIndex.TYPE_NAME, pipeline_name)
  if index is None:
    return None
  properties = index.custom_properties
  summary = {"reason": properties[index_keys.REASON].string_value,
             "published_dir": properties[index_keys.PUBLISHED_DIR].string_value}
  for directory in filter(None, (summary["published_dir"], index.uri)):
    try:
      manifest = dataclasses.asdict(index_dir.verify(directory))
    except IndexDirError:
      continue
    manifest.pop("files")
    return {**summary, **manifest}
  return summary
