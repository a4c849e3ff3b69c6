"""Serving fixtures: the tiny run's release (model, index, states of one version) and the TF
Serving test double (tf_serving_double.py) or the real server when it is on PATH."""
import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tf_serving_double  # noqa: E402  pylint: disable=wrong-import-position

from ctxrec.serving.tf_serving.model_config import MODEL_NAME  # noqa: E402
from ctxrec.serving import loopback  # noqa: E402
from ctxrec.serving.feature_store import sqlite_store  # noqa: E402

REAL_SERVER = "tensorflow_model_server"


@pytest.fixture(scope="session")
def tiny_release(tiny_daily):
  """(serving dir OUT/serving, store URI, model version) of the tiny training + daily runs."""
  config, summary = tiny_daily
  return (os.path.join(config.output_dir, "serving"), config.store_uri,
          summary.states_version.split("@")[0])


@pytest.fixture
def release_copy(tiny_release, tmp_path):
  """A private copy of the tiny release (serving folder and SQLite store) a test may change."""
  serving_dir, store_uri, version = tiny_release
  target = os.path.join(tmp_path, "serving")
  shutil.copytree(serving_dir, target)
  db = os.path.join(tmp_path, "states.sqlite")
  shutil.copy(sqlite_store.sqlite_path(store_uri), db)
  return target, sqlite_store.sqlite_uri(db), version


class RealTfServing:
  """The real tensorflow_model_server on loopback, for where it is installed."""

  def __init__(self, base_path: str):
    self.grpc_port, self.rest_port = loopback.free_port(), loopback.free_port()
    self._process = subprocess.Popen(
        [REAL_SERVER, f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}",
         f"--model_name={MODEL_NAME}", f"--model_base_path={base_path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    self._wait()

  def _wait(self) -> None:
    import httpx  # pylint: disable=g-import-not-at-top
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
      try:
        if httpx.get(f"{self.rest_url}/v1/models/{MODEL_NAME}").status_code == 200:
          return
      except httpx.HTTPError:
        pass
      time.sleep(0.5)
    self.stop()
    raise RuntimeError(f"{REAL_SERVER} did not become ready")

  grpc_target = property(lambda self: f"grpc://127.0.0.1:{self.grpc_port}")
  rest_url = property(lambda self: f"http://127.0.0.1:{self.rest_port}")

  def stop(self) -> None:
    self._process.kill()
    self._process.wait()


@pytest.fixture(params=("double", "real"))
def tf_serving(request, tiny_release):
  """TF Serving on the tiny model: the test double, and the real binary when it is on PATH."""
  serving_dir = tiny_release[0]
  base_path = os.path.join(serving_dir, MODEL_NAME)
  if request.param == "real":
    if shutil.which(REAL_SERVER) is None:
      pytest.skip(f"{REAL_SERVER} is not on PATH: the protocol was tested against the test "
                  f"double only")
    server = RealTfServing(base_path)
    yield server
    server.stop()
    return
  with tf_serving_double.TfServingDouble(MODEL_NAME, base_path) as double:
    yield double
