"""Pushed models in TF Serving layout (MODEL_DIR/<integer version>/saved_model.pb): which
directory is which version, and which is the newest."""
import os
from typing import Optional

import tensorflow as tf

from ctxrec.serving.tf_serving.model_config import SAVED_MODEL_FILE


def is_version_dir(path: str) -> bool:
  """A directory named by an integer that holds a SavedModel, as TF Serving loads it."""
  name = os.path.basename(os.path.normpath(path))
  return name.isdigit() and tf.io.gfile.exists(os.path.join(path, SAVED_MODEL_FILE))


def newest_version_dir(model_dir: str) -> Optional[str]:
  """The highest-numbered version under a model directory, or None if it has none."""
  if not tf.io.gfile.isdir(model_dir):
    return None
  versions = [os.path.join(model_dir, name.rstrip("/")) for name in tf.io.gfile.listdir(model_dir)]
  versions = [path for path in versions if is_version_dir(path)]
  return max(versions, key=lambda path: int(os.path.basename(path))) if versions else None


def resolve_version_dir(path: str) -> str:
  """`path` itself when it is one version, else the newest version under it."""
  if is_version_dir(path):
    return os.path.normpath(path)
  newest = newest_version_dir(path)
  if newest is None:
    raise ValueError(f"{path}: no pushed model: expected a version directory "
                     f"(MODEL_DIR/<integer version>/{SAVED_MODEL_FILE}) or a model directory "
                     f"holding some; `ctxrec run` pushes one when the model is blessed")
  return newest


def version_of(version_dir: str) -> str:
  """The model version a version directory serves (its name)."""
  return os.path.basename(os.path.normpath(version_dir))
