"""Compiles the training and daily pipelines for Kubeflow Pipelines v2 and Vertex Pipelines."""
import json
from typing import Any, Dict, Union

import yaml
from tfx import v1 as tfx
from tfx.dsl.io import fileio

from ctxrec.kubeflow import runtime_parameters
from ctxrec.pipeline import daily_pipeline
from ctxrec.pipeline import training_pipeline
from ctxrec.pipeline.config import DailyPipelineConfig, PipelineConfig

YAML_SUFFIXES = (".yaml", ".yml")
# Each pipeline's one definition and its plain run values, by the config that describes it.
_DEFINITIONS = {
    PipelineConfig: (training_pipeline.plain_values, training_pipeline.create_pipeline),
    DailyPipelineConfig: (daily_pipeline.plain_values, daily_pipeline.create_daily_pipeline),
}


def compile_pipeline(config: Union[PipelineConfig, DailyPipelineConfig], image: str,
                     out: str) -> Dict[str, Any]:
  """Writes the config's pipeline (training or daily) to `out`; returns the PipelineJob dict.

  `out` ending in .yaml/.yml gets the PipelineSpec (what the kfp Client submits), anything else
  the PipelineJob JSON (PipelineSpec plus runtimeConfig; what Vertex PipelineJob submits).
  Every executor runs `image`; no file of this machine is referenced.
  """
  plain_values, create = _DEFINITIONS[type(config)]
  plain = plain_values(config)
  pipeline = create(config, runtime_parameters.runtime_parameters(plain))
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=image, use_pipeline_spec_2_1=True))
  values = runtime_parameters.defaults(plain)
  job = runner.run(pipeline, parameter_values=values, write_out=False)
  _declare_defaults(job["pipelineSpec"], values)
  _write(job, out)
  return job


def _declare_defaults(spec: Dict[str, Any], values: Dict[str, Any]) -> None:
  """Puts the defaults in the spec too, so submitting without them works on KFP as on Vertex."""
  parameters = spec["root"]["inputDefinitions"]["parameters"]
  for name, value in values.items():
    parameters[name].update(defaultValue=value, isOptional=True)


def _write(job: Dict[str, Any], out: str) -> None:
  with fileio.open(out, "w") as handle:
    if out.endswith(YAML_SUFFIXES):
      yaml.safe_dump(job["pipelineSpec"], handle, sort_keys=True)
    else:
      json.dump(job, handle, indent=2, sort_keys=True)
