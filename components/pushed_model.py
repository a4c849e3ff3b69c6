"""A pushed model as a downstream component takes it: its SavedModel and its serving version.

The PushedModel comes from TFX's Pusher (the model copied into the artifact, the version in
its `pushed_version` property) or from an Importer of a version directory
SERVING_DIR/<version> (the version is the directory's name).
"""
import tensorflow as tf
from tfx import types

from ctxrec.serving import model_versions

PUSHED = "pushed"  # TFX Pusher's custom property names
PUSHED_VERSION = "pushed_version"


def was_pushed(pushed_model: types.Artifact) -> bool:
  """False when TFX's Pusher did not push (the model was not blessed)."""
  return not pushed_model.has_custom_property(PUSHED) or bool(
      pushed_model.get_int_custom_property(PUSHED))


def model_dir(pushed_model: types.Artifact) -> str:
  """The SavedModel directory, or an error when the Pusher did not push (model not blessed)."""
  if not was_pushed(pushed_model):
    raise ValueError(f"{pushed_model.uri}: the model was not pushed (not blessed); nothing to "
                     f"serve")
  if not tf.io.gfile.exists(f"{pushed_model.uri}/{model_versions.SAVED_MODEL_FILE}"):
    raise ValueError(f"{pushed_model.uri}: no {model_versions.SAVED_MODEL_FILE}; point at a "
                     f"pushed version directory SERVING_DIR/<version>")
  return pushed_model.uri


def model_version(pushed_model: types.Artifact) -> str:
  """The version TF Serving serves the model under."""
  if pushed_model.has_custom_property(PUSHED_VERSION):
    return pushed_model.get_string_custom_property(PUSHED_VERSION)
  version = model_versions.version_of(pushed_model.uri)
  if not version.isdigit():
    raise ValueError(f"{pushed_model.uri}: cannot tell the model version; import a pushed "
                     f"version directory SERVING_DIR/<integer version>")
  return version
