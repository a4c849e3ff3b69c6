"""Builds releases for the service tests: a new model version from the tiny release's parts."""
import json
import os
import shutil
import sqlite3

import numpy as np

from ctxrec.serving import feature_store
from ctxrec.serving.feature_store import StatesVersion, sqlite_store
from ctxrec.serving.index import index_dir
from ctxrec.serving.tf_serving.model_config import MODEL_NAME


def new_version(serving_dir: str, store_uri: str, version: str, new: str,
                index: bool = True) -> StatesVersion:
  """A release of model version `new`: the same weights copied under a new version, its index
  rebuilt with that version in the manifest, its states published (and made current)."""
  shutil.copytree(os.path.join(serving_dir, MODEL_NAME, version),
                  os.path.join(serving_dir, MODEL_NAME, new))
  if index:
    copy_index(serving_dir, version, new)
  return publish_states(store_uri, new)


def publish_states(store_uri: str, new: str) -> StatesVersion:
  """The current version's states published again as model `new`'s (and made current)."""
  with feature_store.open_store(store_uri) as store:
    old = store.current()
    users = all_users(store_uri, old)
    states = store.get_many(users, old)
    target = StatesVersion(new, old.serving_date)
    store.publish(target, len(states[0]), store.cold_start(old),
                  [(users, np.stack(states))])
  return target


def copy_index(serving_dir: str, version: str, new: str) -> None:
  source = os.path.join(serving_dir, "index", version)
  staging = os.path.join(serving_dir, "index", f".{new}")
  shutil.copytree(source, staging)
  path = os.path.join(staging, index_dir.MANIFEST_FILE)
  with open(path) as handle:
    manifest = json.load(handle)
  manifest["model_version"] = new
  with open(path, "w") as handle:
    json.dump(manifest, handle)
  os.rename(staging, os.path.join(serving_dir, "index", new))


def all_users(store_uri: str, version: StatesVersion):
  with sqlite3.connect(sqlite_store.sqlite_path(store_uri)) as db:
    table = sqlite_store._table(version)  # pylint: disable=protected-access
    return [row[0] for row in db.execute(f'SELECT user_id FROM "{table}" WHERE user_id != ""')]
