"""Beam pipeline arguments per runner for cluster runs: a preset, then the user's own args."""
import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

from ctxrec.kubeflow import image

DIRECT = "DirectRunner"
DATAFLOW = "DataflowRunner"
FLINK = "FlinkRunner"
SPARK = "SparkRunner"
RUNNERS = (DIRECT, DATAFLOW, FLINK, SPARK)
# One worker process per core the machine reports (on Kubernetes: the node, not the pod limit).
MULTI_PROCESS_DIRECT = ("--direct_running_mode=multi_processing", "--direct_num_workers=0")


@dataclasses.dataclass(frozen=True)
class BeamOptions:
  """The runner and where it runs; `extra_args` come last, so they override the preset."""
  runner: str = DIRECT
  image: str = ""  # the project image: Dataflow's SDK container, Flink/Spark's worker environment
  project: Optional[str] = None
  region: Optional[str] = None
  temp_location: Optional[str] = None
  flink_master: Optional[str] = None
  spark_master: Optional[str] = None
  extra_args: Tuple[str, ...] = ()

  def __post_init__(self):
    if self.runner not in RUNNERS:
      raise ValueError(f"beam runner must be one of {', '.join(RUNNERS)}, got {self.runner!r}")


def beam_args(options: BeamOptions) -> List[str]:
  """The runner's preset followed by the user's extra arguments."""
  return _PRESETS[options.runner](options) + list(options.extra_args)


def _require(options: BeamOptions, *names: str) -> None:
  missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(options, n)]
  if missing:
    raise ValueError(f"{options.runner} needs {', '.join(missing)}")


def _direct(options: BeamOptions) -> List[str]:
  del options  # the component's own pod does the work
  return list(MULTI_PROCESS_DIRECT)


def _dataflow(options: BeamOptions) -> List[str]:
  _require(options, "project", "region", "temp_location", "image")
  return ["--runner=DataflowRunner", f"--project={options.project}",
          f"--region={options.region}", f"--temp_location={options.temp_location}",
          f"--sdk_container_image={options.image}", f"--extra_package={image.sdist_path()}"]


def _portable(options: BeamOptions, master_flag: str, master: Optional[str]) -> List[str]:
  """Flink and Spark: SDK workers run in the project image (TensorFlow, TFX and ctxrec)."""
  return [f"--runner={options.runner}", f"{master_flag}={master}", "--environment_type=DOCKER",
          f"--environment_config={options.image}", f"--extra_package={image.sdist_path()}"]


def _flink(options: BeamOptions) -> List[str]:
  _require(options, "flink_master", "image")
  return _portable(options, "--flink_master", options.flink_master)


def _spark(options: BeamOptions) -> List[str]:
  _require(options, "spark_master", "image")
  return _portable(options, "--spark_master_url", options.spark_master)


_PRESETS: Dict[str, Callable[[BeamOptions], List[str]]] = {
    DIRECT: _direct, DATAFLOW: _dataflow, FLINK: _flink, SPARK: _spark}
