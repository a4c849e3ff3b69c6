"""Beam arguments per runner: the preset, then the user's arguments, which override it."""
import pytest

from ctxrec.kubeflow import beam_presets as presets
from ctxrec.kubeflow import image

IMAGE = "registry.example/ctxrec:1"


def test_direct_runner_uses_every_core_in_processes():
  assert presets.beam_args(presets.BeamOptions()) == [
      "--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def test_user_arguments_come_last():
  options = presets.BeamOptions(extra_args=("--direct_num_workers=4",))
  assert presets.beam_args(options)[-1] == "--direct_num_workers=4"


def test_dataflow_workers_run_the_image_and_get_the_sdist():
  args = presets.beam_args(presets.BeamOptions(
      runner=presets.DATAFLOW, image=IMAGE, project="p", region="r", temp_location="gs://b/t"))
  assert args == ["--runner=DataflowRunner", "--project=p", "--region=r",
                  "--temp_location=gs://b/t", f"--sdk_container_image={IMAGE}",
                  f"--extra_package={image.sdist_path()}"]


@pytest.mark.parametrize("runner, master, flag", [
    (presets.FLINK, {"flink_master": "flink:8081"}, "--flink_master=flink:8081"),
    (presets.SPARK, {"spark_master": "spark://m:7077"}, "--spark_master_url=spark://m:7077")])
def test_portable_runners_run_workers_in_the_image(runner, master, flag):
  args = presets.beam_args(presets.BeamOptions(runner=runner, image=IMAGE, **master))
  assert args == [f"--runner={runner}", flag, "--environment_type=DOCKER",
                  f"--environment_config={IMAGE}", f"--extra_package={image.sdist_path()}"]


def test_missing_options_are_named():
  with pytest.raises(ValueError, match="DataflowRunner needs --region, --temp-location"):
    presets.beam_args(presets.BeamOptions(runner=presets.DATAFLOW, image=IMAGE, project="p"))


def test_unknown_runner_is_rejected():
  with pytest.raises(ValueError, match="beam runner must be one of"):
    presets.BeamOptions(runner="Local")
