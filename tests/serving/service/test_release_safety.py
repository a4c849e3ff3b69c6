"""A state-store writer must not choose what code the service loads: a version that is a path, is
not an integer, or names a folder that resolves outside --serving-dir (symlinks included) is a
flagged refusal that keeps the release being served, and the planted SavedModel never runs."""
import os
import shutil
import sqlite3

import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient

from ctxrec.components.request_context import NO_CONTEXT
from ctxrec.serving.feature_store import sqlite_store
from ctxrec.serving.head.in_process import InProcessHead
from ctxrec.serving.service import release as release_module
from ctxrec.serving.service import server
from ctxrec.serving.tf_serving.model_config import MODEL_NAME
from ctxrec.transform import features as f

import release_builder  # noqa: E402  (tests/serving, put on sys.path by its conftest)


def plant_model(path: str, real_model_dir: str, marker: str) -> None:
  """A SavedModel with the real context_head's inputs and outputs whose graph writes `marker`
  when called: what an attacker would plant (a graph can read and write files)."""
  real = InProcessHead(real_model_dir)
  dimension = _embed_blank(real).shape[1]

  @tf.function(input_signature=[dict(real.signature.specs)])
  def context_head(inputs):
    with tf.control_dependencies([tf.io.write_file(marker, "the planted model ran")]):
      rows = tf.shape(inputs[f.HISTORY_STATE])[0]
      return {f.USER_EMBEDDING: tf.math.l2_normalize(tf.ones([rows, dimension]), axis=1)}
  tf.saved_model.save(tf.Module(), path, signatures={
      f.SIGNATURE_CONTEXT_HEAD: context_head.get_concrete_function()})


def _embed_blank(head: InProcessHead) -> np.ndarray:
  return head.embed(head.signature.inputs(np.zeros([1, head.signature.dimension]), [NO_CONTEXT],
                                          [{}])).embeddings


def _plant_release(folder: str, serving_dir: str, version: str, new: str, marker: str) -> None:
  """A planted model and a copy of the real index (of model `new`) in `folder`, as one release."""
  plant_model(folder, os.path.join(serving_dir, MODEL_NAME, version), marker)
  release_builder.copy_index(serving_dir, version, new)
  index = os.path.join(serving_dir, "index", new)
  for name in os.listdir(index):
    shutil.move(os.path.join(index, name), os.path.join(folder, name))
  os.rmdir(index)


def _set_current(store_uri: str, text: str) -> None:
  """Writes the store's pointer directly, as anyone with write access to the store can."""
  with sqlite3.connect(sqlite_store.sqlite_path(store_uri)) as db:
    db.execute("UPDATE pointer SET version = ? WHERE name = 'current'", (text,))


def _state_of(store_uri: str) -> str:
  with sqlite3.connect(sqlite_store.sqlite_path(store_uri)) as db:
    return db.execute("SELECT version FROM pointer WHERE name = 'current'").fetchone()[0]


def _assert_refused_and_serving(service, client, version: str, marker: str) -> None:
  assert not service.manager.refresh()
  assert service.manager.current.model_version == version
  answer = client.post("/v1/retrieve", json={"user_id": "nobody", "k": 3})
  assert answer.status_code == 200 and answer.json()["model_version"] == version
  ready = client.get("/readyz").json()
  assert ready["ready"] and ready["model_version"] == version
  assert ready["refused"]["reason"] == release_module.REFUSED_UNSAFE
  metrics = client.get("/metrics").text
  assert "ctxrec_release_refused 1.0" in metrics
  assert 'ctxrec_release_refusals_total{reason="unsafe"} 1.0' in metrics
  assert not os.path.exists(marker), "the planted SavedModel ran in the service"


@pytest.fixture
def hostile(release_copy, tmp_path):
  """(service, client, serving dir, store URI, served version, marker file, outside folder)."""
  serving_dir, store_uri, version = release_copy
  service = server.build(server.ServeConfig(serving_dir=serving_dir, store_uri=store_uri))
  outside = str(tmp_path / "outside")
  os.makedirs(outside)
  return (service, TestClient(service.app), serving_dir, store_uri, version,
          str(tmp_path / "planted-model-ran"), outside)


def test_the_planted_model_does_run_when_loaded(hostile):
  """The control: loading the planted folder as a head writes the marker, so the refusals below
  are what keeps it from running."""
  _, _, serving_dir, _, version, marker, outside = hostile
  folder = os.path.join(outside, "5")
  _plant_release(folder, serving_dir, version, "5", marker)
  _embed_blank(InProcessHead(folder))
  assert os.path.exists(marker)


@pytest.mark.parametrize("form", ["absolute path", "relative ../ path", "not an integer"])
def test_a_version_that_is_a_path_written_into_the_store_is_refused(hostile, form):
  service, client, serving_dir, store_uri, version, marker, outside = hostile
  date = _state_of(store_uri).partition("@")[2]
  if form == "absolute path":  # SERVING_DIR/ctxrec/ + "/abs/5" is "/abs/5"
    folder, text = os.path.join(outside, "5"), os.path.join(outside, "5")
  elif form == "relative ../ path":
    folder = os.path.join(outside, "5")
    text = os.path.relpath(folder, os.path.join(serving_dir, MODEL_NAME))
  else:  # a folder inside the serving dir, but not TF Serving's integer layout
    folder = text = os.path.join(serving_dir, MODEL_NAME, "5.0")
    text = "5.0"
  _plant_release(folder, serving_dir, version, "5", marker)
  _set_current(store_uri, f"{text}@{date}")
  _assert_refused_and_serving(service, client, version, marker)
  assert "positive integer" in client.get("/readyz").json()["refused"]["message"]
  _set_current(store_uri, f"{version}@{date}")  # rolled back: the refusal clears
  assert not service.manager.refresh()
  assert client.get("/readyz").json()["refused"] is None
  assert "ctxrec_release_refused 0.0" in client.get("/metrics").text


@pytest.mark.parametrize("link", ["the version folder", "a file inside it"])
def test_a_version_folder_that_links_outside_the_serving_dir_is_refused(hostile, link):
  service, client, serving_dir, store_uri, version, marker, outside = hostile
  new = str(int(version) + 1)
  folder = os.path.join(outside, new)
  plant_model(folder, os.path.join(serving_dir, MODEL_NAME, version), marker)
  target = os.path.join(serving_dir, MODEL_NAME, new)
  if link == "the version folder":
    os.symlink(folder, target)
  else:
    os.makedirs(os.path.join(target, "variables"))
    for parent, _, names in os.walk(folder):
      for name in names:
        source = os.path.join(parent, name)
        os.symlink(source, os.path.join(target, os.path.relpath(source, folder)))
  release_builder.copy_index(serving_dir, version, new)
  release_builder.publish_states(store_uri, new)  # a valid version, published the normal way
  _assert_refused_and_serving(service, client, version, marker)
  assert "outside the serving folder" in client.get("/readyz").json()["refused"]["message"]

