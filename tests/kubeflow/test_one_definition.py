"""The local run and the compiled pipeline come from the same create_pipeline."""
import json

from tfx.orchestration import data_types

from ctxrec.kubeflow import compiler, runtime_parameters
from ctxrec.pipeline.config import PipelineConfig
from ctxrec.pipeline.training_pipeline import create_pipeline, plain_values

IMAGE = "registry.example/ctxrec:1"


def _config(**where) -> PipelineConfig:
  return PipelineConfig(train_steps=12, **where)


def test_local_and_compiled_pipelines_have_the_same_components(tmp_path):
  local = create_pipeline(_config(data_dir=str(tmp_path / "data"), output_dir=str(tmp_path)))
  out = str(tmp_path / "ctxrec.json")
  compiler.compile_pipeline(_config(data_dir="gs://b/data", output_dir="gs://b/root"), IMAGE, out)
  with open(out) as handle:
    tasks = json.load(handle)["pipelineSpec"]["root"]["dag"]["tasks"]
  assert [c.id for c in local.components] and {c.id for c in local.components} == set(tasks)


def test_locally_every_value_is_plain(tmp_path):
  local = create_pipeline(_config(data_dir=str(tmp_path), output_dir=str(tmp_path)))
  values = [v for c in local.components for v in c.exec_properties.values()]
  assert not [v for v in values if isinstance(v, data_types.RuntimeParameter)]


def test_runtime_parameters_default_to_the_local_values(tmp_path):
  plain = plain_values(_config(data_dir="gs://b/data", output_dir=str(tmp_path)))
  parameters = runtime_parameters.runtime_parameters(plain)
  assert {(p.name, p.ptype, p.default) for p in vars(parameters).values()} == {
      ("data_root", str, "gs://b/data"), ("train_args", str, '{"num_steps": 12}'),
      ("margin", float, plain.margin), ("no_context_ratio", float, plain.no_context_ratio)}
