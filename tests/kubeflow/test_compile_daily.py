"""`ctxrec compile-kfp --pipeline daily`: the daily states pipeline for KFP v2 / Vertex, with the
model, date, data and store set per run and the custom artifact types importable on a cluster."""
import json

import pytest
from tfx.utils import import_utils

from ctxrec.components.history_states import HistoryStates
from ctxrec.components.index_builder.component import CatalogIndex
from ctxrec.components.state_publisher.component import PublishedStates
from ctxrec.pipeline import cli

IMAGE = "europe-docker.pkg.dev/proj/ctxrec/ctxrec:1.2"
ROOT = "gs://bucket/ctxrec"
UPSTREAM = {"PushedModelImporter": set(), "HistoryStateInferrer": {"PushedModelImporter"},
            "StatePublisher": {"HistoryStateInferrer", "PushedModelImporter"},
            "IndexBuilder": {"HistoryStateInferrer", "PushedModelImporter"}}


@pytest.fixture(scope="module")
def daily(tmp_path_factory) -> dict:
  out = str(tmp_path_factory.mktemp("kfp") / "daily.json")
  assert cli.main(["compile-kfp", "--pipeline", "daily", "--image", IMAGE, "--pipeline-root",
                   ROOT, "--out", out, "--store", "redis://redis.ctxrec:6379/0",
                   "--beam-runner", "DataflowRunner", "--project", "proj", "--region", "eu",
                   "--temp-location", "gs://bucket/tmp"]) == 0
  with open(out) as handle:
    return json.load(handle)


def test_the_daily_dag(daily):
  tasks = daily["pipelineSpec"]["root"]["dag"]["tasks"]
  assert {name: set(task.get("dependentTasks", ())) for name, task in tasks.items()} == UPSTREAM


def test_model_date_data_and_store_are_runtime_parameters(daily):
  spec = daily["pipelineSpec"]
  parameters = spec["root"]["inputDefinitions"]["parameters"]
  assert set(parameters) == {"data_root", "model_uri", "serving_date", "store_uri"}
  assert parameters["store_uri"]["defaultValue"] == "redis://redis.ctxrec:6379/0"
  for name in ("data_root", "model_uri", "serving_date"):  # set at submission
    assert "defaultValue" not in parameters[name]
  tasks = spec["root"]["dag"]["tasks"]
  assert tasks["PushedModelImporter"]["inputs"]["parameters"]["artifact_uri"] == {
      "componentInputParameter": "model_uri"}
  inferrer = tasks["HistoryStateInferrer"]["inputs"]["parameters"]
  assert inferrer["serving_date"] == {"componentInputParameter": "serving_date"}
  assert inferrer["input_base"] == {"componentInputParameter": "data_root"}


def test_the_inferrer_runs_beam_on_dataflow_in_the_project_image(daily):
  executors = daily["pipelineSpec"]["deploymentSpec"]["executors"]
  inferrer = executors["HistoryStateInferrer_executor"]["container"]
  assert inferrer["image"] == IMAGE
  assert "--runner=DataflowRunner" in inferrer["args"]
  assert f"--sdk_container_image={IMAGE}" in inferrer["args"]


@pytest.mark.parametrize("artifact_type", [HistoryStates, PublishedStates, CatalogIndex])
def test_custom_artifact_types_are_found_by_their_schema_title(daily, artifact_type):
  assert f"title: {artifact_type.TYPE_NAME}\n" in json.dumps(daily).replace("\\n", "\n")
  assert import_utils.import_class_by_path(artifact_type.TYPE_NAME) is artifact_type
