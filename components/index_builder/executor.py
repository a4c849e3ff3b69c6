"""IndexBuilder executor: embed the catalog with the pushed model, build a recall-gated ScaNN
index, and publish it to INDEX_ROOT/<model_version>/ when it passes."""
import hashlib
import json
import logging
import os
import tempfile
from typing import Tuple

import numpy as np
import pandas as pd
import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from ctxrec import progress
from ctxrec.components import examples_io
from ctxrec.components import history_states
from ctxrec.components import pushed_model
from ctxrec.components.index_builder import spec_keys as keys
from ctxrec.components.index_builder.config import IndexBuilderConfig
from ctxrec.components.request_context import NO_CONTEXT
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.serving.head.head import HeadSignature
from ctxrec.serving.index import index_dir
from ctxrec.serving.index.build import Catalog, build_index
from ctxrec.serving.index.manifest import IndexDirError, IndexManifest
from ctxrec.trainer import exported_model
from ctxrec.transform import features as f

TUNING_FILE = "tuning.json"


def catalog_fingerprint(items: pd.DataFrame) -> str:
  """sha256 of the catalog as embedded: ids, categories and confidences, in order."""
  digest = hashlib.sha256()
  for item_id, categories, confidences in zip(items[f.ITEM_ID], items[f.CATEGORIES],
                                              items[f.CONFIDENCES]):
    digest.update(json.dumps([item_id, list(categories), list(confidences)]).encode())
  return digest.hexdigest()


def embed_catalog(model, items: pd.DataFrame, fingerprint: str, model_version: str) -> Catalog:
  """Every item of the items table, embedded by the model (new items through their categories)."""
  width = exported_model.item_categories(model.signatures)
  wide = int(sum(len(c) > width for c in items[f.CATEGORIES]))
  if wide:
    logging.warning("IndexBuilder: %d items have more than %d categories; the model embeds "
                    "their first %d (highest confidence first)", wide, width, width)
  progress.report("IndexBuilder: embedding %d items", len(items))
  embeddings = exported_model.embed_catalog(model.signatures, items)
  return Catalog(list(items[f.ITEM_ID]), embeddings, model_version, fingerprint,
                 list(items[f.CATEGORIES]), list(items[f.CONFIDENCES]))


def _sample(rows: int, wanted: int, seed: int) -> np.ndarray:
  return np.sort(np.random.default_rng(seed).permutation(rows)[:wanted])


def example_queries(model, examples, config: IndexBuilderConfig) -> np.ndarray:
  """User embeddings of eval requests (serving_default, with their real context)."""
  files = examples_io.split_files(examples, f.EVAL)
  if not files:
    raise ValueError(f"{examples.uri}: no eval split to draw queries from")
  function = model.signatures[f.SIGNATURE_SERVING_DEFAULT]
  requests = exported_model.example_requests(files, function)
  pick = _sample(len(requests.labels), config.num_queries, config.seed)
  return exported_model.embed(function, {n: v[pick] for n, v in requests.inputs.items()},
                              f.USER_EMBEDDING)


def state_queries(model, states, config: IndexBuilderConfig) -> np.ndarray:
  """User embeddings of published users' states with no context (context_head)."""
  users = states.get_int_custom_property(history_states.USERS)
  keep = min(1.0, config.num_queries / max(users, 1))
  rng = np.random.default_rng(config.seed)
  chosen = [batch[rng.random(len(batch)) < keep] for _, batch in history_states.read_states(states)]
  sample = np.concatenate(chosen)[:config.num_queries]
  function = model.signatures[f.SIGNATURE_CONTEXT_HEAD]
  inputs = HeadSignature(exported_model.signature_inputs(function)).inputs(
      sample, [NO_CONTEXT] * len(sample), [{}] * len(sample))
  return exported_model.embed(function, inputs, f.USER_EMBEDDING)


def queries(model, input_dict, config: IndexBuilderConfig) -> Tuple[np.ndarray, str]:
  """Real user embeddings to measure recall on, and where they came from."""
  if input_dict.get(keys.EXAMPLES):
    examples = artifact_utils.get_single_instance(input_dict[keys.EXAMPLES])
    return example_queries(model, examples, config), "eval requests (serving_default)"
  if input_dict.get(keys.HISTORY_STATES):
    states = artifact_utils.get_single_instance(input_dict[keys.HISTORY_STATES])
    return state_queries(model, states, config), "history states (context_head, no context)"
  raise ValueError("IndexBuilder needs `examples` or `history_states` to draw real queries from")


def published_manifest(index_root: str, model_version: str):
  """The complete index published for the version, or None."""
  try:
    return index_dir.verify(os.path.join(index_root, model_version))
  except IndexDirError:
    return None


class Executor(base_executor.BaseExecutor):
  """Embeds the catalog, builds and gates the index, publishes it if it passes."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    config = IndexBuilderConfig.from_json(exec_properties[keys.CONFIG])
    index = artifact_utils.get_single_instance(output_dict[keys.INDEX])
    pushed = artifact_utils.get_single_instance(input_dict[keys.PUSHED_MODEL])
    if not pushed_model.was_pushed(pushed):
      _record(index, "", False, "", "the model was not pushed (not blessed): no index built")
      return
    version = pushed_model.model_version(pushed)
    model_dir = pushed_model.model_dir(pushed)
    model = tf.saved_model.load(model_dir)
    exported_model.signature(model, f.SIGNATURE_EMBED_ITEMS, model_dir)
    tables = input_tables.locate_tables(exec_properties[keys.INPUT_BASE])
    items = input_tables.items_frame(input_tables.load_items(tables.items))
    fingerprint = catalog_fingerprint(items)
    index_root = exec_properties[keys.INDEX_ROOT]
    current = published_manifest(index_root, version)
    if current is not None and current.catalog_fingerprint == fingerprint:
      _record(index, version, current.blessed, os.path.join(index_root, version),
              "the catalog did not change: the published index stands")
      return
    catalog = embed_catalog(model, items, fingerprint, version)
    found, source = queries(model, input_dict, config)
    with tempfile.TemporaryDirectory(prefix="ctxrec-index-") as scratch:
      local = os.path.join(scratch, "index")
      manifest, measured = build_index(catalog, found, source,
                                       config.build_spec(len(catalog.item_ids)), local)
      index_dir.copy_tree(local, index.uri)
      with tf.io.gfile.GFile(os.path.join(index.uri, TUNING_FILE), "w") as handle:
        json.dump([m.to_dict() for m in measured], handle, indent=2)
      published = index_dir.publish(local, index_root, version) if manifest.blessed else ""
    _record(index, version, manifest.blessed, published, _reason(manifest))


def _reason(manifest: IndexManifest) -> str:
  recall = manifest.recall["recall@100"]
  if manifest.blessed:
    return f"recall@100 {recall:.4f} >= {manifest.threshold}: published"
  return (f"recall@100 {recall:.4f} < {manifest.threshold}: not published; see {TUNING_FILE} "
          f"for every setting tried")


def _record(index, version: str, blessed: bool, published: str, reason: str) -> None:
  index.set_string_custom_property(keys.MODEL_VERSION, version)
  index.set_int_custom_property(keys.BLESSED, int(blessed))
  index.set_string_custom_property(keys.PUBLISHED_DIR, published)
  index.set_string_custom_property(keys.REASON, reason)
  logging.info("IndexBuilder: %s", reason)
  progress.report("IndexBuilder: %s", reason)
