"""`ctxrec compile-kfp`: the whole pipeline, its DAG, image, runtime parameters and Beam arguments,
with nothing of the build machine baked in."""
import json
import os
import sys
from importlib import metadata

import pytest
import yaml

from ctxrec.kubeflow import image
from ctxrec.pipeline import cli

IMAGE = "europe-docker.pkg.dev/proj/ctxrec/ctxrec:1.2"
ROOT = "gs://bucket/ctxrec"
DATA = "gs://bucket/data"
DATAFLOW = ["--beam-runner", "DataflowRunner", "--project", "proj", "--region", "europe-west4",
            "--temp-location", "gs://bucket/scratch", "--beam-arg=--max_num_workers=8"]
UPSTREAM = {
    "SequenceExampleGen": set(),
    "StatisticsGen": {"SequenceExampleGen"},
    "ExamplesSchemaGen": set(),
    "ExampleValidator": {"StatisticsGen", "ExamplesSchemaGen"},
    "AnomaliesGate": {"ExampleValidator"},
    "Transform": {"SequenceExampleGen", "ExamplesSchemaGen", "AnomaliesGate"},
    "PseudoContextAugmenter": {"SequenceExampleGen", "AnomaliesGate"},
    "Trainer": {"PseudoContextAugmenter", "Transform", "ExamplesSchemaGen"},
    "HistoryOnlyTrainer": {"PseudoContextAugmenter", "Transform", "ExamplesSchemaGen"},
    "RetrievalEvaluator": {"SequenceExampleGen", "Trainer", "HistoryOnlyTrainer"},
    "Pusher": {"Trainer", "RetrievalEvaluator"},
    "IndexBuilder": {"Pusher", "SequenceExampleGen"},
}
BEAM_COMPONENTS = ("SequenceExampleGen", "StatisticsGen", "Transform", "PseudoContextAugmenter")


def _compile(out: str, *extra: str) -> str:
  code = cli.main(["compile-kfp", "--image", IMAGE, "--pipeline-root", ROOT, "--out", out,
                   "--data-root", DATA, "--train-steps", "77", *extra])
  assert code == 0
  with open(out) as handle:
    return handle.read()


@pytest.fixture(scope="module")
def dataflow_json(tmp_path_factory) -> str:
  return _compile(str(tmp_path_factory.mktemp("kfp") / "ctxrec.json"), *DATAFLOW)


@pytest.fixture(scope="module")
def dataflow_spec(dataflow_json) -> dict:
  return json.loads(dataflow_json)["pipelineSpec"]


def _executor_args(spec: dict, task: str) -> list:
  label = spec["components"][task]["executorLabel"]
  return spec["deploymentSpec"]["executors"][label]["container"]["args"]


def test_every_component_with_its_upstream_tasks(dataflow_spec):
  tasks = dataflow_spec["root"]["dag"]["tasks"]
  assert {name: set(task.get("dependentTasks", ())) for name, task in tasks.items()} == UPSTREAM


def test_every_executor_runs_the_given_image(dataflow_spec):
  executors = dataflow_spec["deploymentSpec"]["executors"]
  assert len(executors) == len(UPSTREAM)
  assert {e["container"]["image"] for e in executors.values()} == {IMAGE}


def test_runtime_parameters_are_pipeline_inputs_with_defaults(dataflow_json, dataflow_spec):
  parameters = dataflow_spec["root"]["inputDefinitions"]["parameters"]
  assert {name: p["parameterType"] for name, p in parameters.items()} == {
      "data_root": "STRING", "train_args": "STRING", "margin": "NUMBER_DOUBLE",
      "no_context_ratio": "NUMBER_DOUBLE"}
  assert parameters["data_root"]["defaultValue"] == DATA
  assert json.loads(parameters["train_args"]["defaultValue"]) == {"num_steps": 77}
  assert json.loads(dataflow_json)["runtimeConfig"]["parameterValues"]["data_root"] == DATA


def test_components_read_the_runtime_parameters(dataflow_spec):
  tasks = dataflow_spec["root"]["dag"]["tasks"]
  uses = {(task, key): value["componentInputParameter"]
          for task, spec in tasks.items()
          for key, value in spec["inputs"].get("parameters", {}).items()
          if "componentInputParameter" in value}
  assert uses == {
      ("SequenceExampleGen", "input_base"): "data_root",
      ("RetrievalEvaluator", "input_base"): "data_root",
      ("IndexBuilder", "input_base"): "data_root",
      ("Trainer", "train_args"): "train_args",
      ("HistoryOnlyTrainer", "train_args"): "train_args",
      ("RetrievalEvaluator", "margin"): "margin",
      ("RetrievalEvaluator", "no_context_ratio"): "no_context_ratio"}
  assert "input_fingerprint" not in tasks["SequenceExampleGen"]["inputs"]["parameters"]


def test_dataflow_arguments_reach_every_beam_component(dataflow_spec):
  expected = ["--runner=DataflowRunner", "--project=proj", "--region=europe-west4",
              "--temp_location=gs://bucket/scratch", f"--sdk_container_image={IMAGE}",
              f"--extra_package=/ctxrec/dist/ctxrec-{metadata.version('ctxrec')}.tar.gz",
              "--max_num_workers=8"]
  assert image.sdist_path() in expected[5]
  for task in BEAM_COMPONENTS:
    args = _executor_args(dataflow_spec, task)
    assert args[-len(expected):] == expected, task


def test_multi_process_direct_runner_by_default(tmp_path):
  spec = yaml.safe_load(_compile(str(tmp_path / "ctxrec.yaml")))  # YAML: the PipelineSpec itself
  for task in BEAM_COMPONENTS:
    args = _executor_args(spec, task)
    assert args[-2:] == ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def test_no_path_of_this_machine_is_baked_in(dataflow_json, tmp_path_factory):
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  local = {"/work", "/tmp", "/home", repo, sys.prefix, os.getcwd(), os.path.expanduser("~"),
           str(tmp_path_factory.getbasetemp())}
  assert [path for path in local if path in dataflow_json] == []
  assert "module_file" not in dataflow_json and "user_module" not in dataflow_json


def test_without_a_data_root_it_must_be_given_at_submission(tmp_path):
  out = str(tmp_path / "ctxrec.json")
  assert cli.main(["compile-kfp", "--image", IMAGE, "--pipeline-root", ROOT, "--out", out]) == 0
  with open(out) as handle:
    job = json.load(handle)
  data_root = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]["data_root"]
  assert "defaultValue" not in data_root and not data_root.get("isOptional")
  assert "data_root" not in job["runtimeConfig"]["parameterValues"]


def test_missing_runner_options_are_a_one_line_error(tmp_path, capsys):
  code = cli.main(["compile-kfp", "--image", IMAGE, "--pipeline-root", ROOT,
                   "--out", str(tmp_path / "x.json"), "--beam-runner", "FlinkRunner"])
  assert code == cli.EXIT_USAGE
  assert "ctxrec compile-kfp: error: FlinkRunner needs --flink-master" in capsys.readouterr().err
  assert not (tmp_path / "x.json").exists()
