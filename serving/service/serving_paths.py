"""The folders a release is loaded from: SERVING_DIR/<model name>/<version>/ and
SERVING_DIR/index/<version>/, built from validated versions only and confined to SERVING_DIR.

The version arrives through the state store, which other writers share; a SavedModel's graph
can read and write files, so loading one from outside the serving folder would let whoever
writes the store run code in the service. Every local path is resolved (symlinks included) and
must stay under the resolved serving folder, and so must everything inside the folders loaded.
"""
import os

from ctxrec import versions
from ctxrec.serving.tf_serving.model_config import MODEL_NAME

INDEX_FOLDER = "index"


class OutsideServingDirError(ValueError):
  """A path the service would open resolves outside its serving folder."""


def model_dir(serving_dir: str, model_version: str) -> str:
  return confined(serving_dir, MODEL_NAME, versions.model_version(model_version))


def index_path(serving_dir: str, model_version: str) -> str:
  return confined(serving_dir, INDEX_FOLDER, versions.model_version(model_version))


def _remote(path: str) -> bool:
  return "://" in path  # object stores (gs://, s3://) have no symlinks; names are checked


def _inside(root: str, path: str) -> bool:
  return os.path.commonpath([root, path]) == root


def confined(serving_dir: str, *names: str) -> str:
  """SERVING_DIR/names..., refused when it resolves outside SERVING_DIR."""
  for name in names:
    if not name or name in (".", "..") or "/" in name or os.sep in name:
      raise OutsideServingDirError(f"{name!r} is not a folder name under {serving_dir}")
  path = os.path.join(serving_dir, *names)
  if not _remote(serving_dir):
    _check(os.path.realpath(serving_dir), path)
  return path


def check_tree(serving_dir: str, directory: str) -> None:
  """Refuses `directory` when it, or anything inside it, resolves outside SERVING_DIR."""
  if _remote(serving_dir):
    return
  root = os.path.realpath(serving_dir)
  _check(root, directory)
  for parent, folders, files in os.walk(directory):
    for name in folders + files:
      _check(root, os.path.join(parent, name))


def _check(root: str, path: str) -> None:
  resolved = os.path.realpath(path)
  if not _inside(root, resolved):
    raise OutsideServingDirError(f"{path} resolves to {resolved}, outside the serving folder "
                                 f"{root}: refused (a symlink or a version that is a path)")
