"""An index directory on disk, and publishing one into OUT/serving/index/<model_version>/.

  manifest.json    IndexManifest, written last (a directory without it is partial)
  items.parquet    row -> item of the searcher's datapoints: item_id, categories, confidences
                   (the catalog the index embedded; the service resolves viewed items with it)
  embeddings.npy   row -> the item's embedding (float32): the exact score of the items of a
                   request's boosted categories, and of the searcher's candidates beside them
  scann/           the serialized ScaNN searcher (its recorded paths are rewritten on load)
"""
import dataclasses
import os
import shutil
import tempfile
import time
from typing import Iterator, List, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

from ctxrec import versions
from ctxrec.components.sequence_example_gen.input_tables import Item
from ctxrec.serving.index import scann_api
from ctxrec.serving.index.manifest import IndexDirError, IndexManifest
from ctxrec.transform import features as f

MANIFEST_FILE = "manifest.json"
ITEMS_FILE = "items.parquet"
EMBEDDINGS_FILE = "embeddings.npy"
SCANN_DIR = "scann"


def _files(directory: str) -> List[str]:
  found = []
  for root, _, names in os.walk(directory):
    found += [os.path.relpath(os.path.join(root, name), directory) for name in names]
  return sorted(found)


def items_table(item_ids: Sequence[str], categories: Sequence[Sequence[str]],
                confidences: Sequence[Sequence[float]]) -> pa.Table:
  return pa.table({f.ITEM_ID: pa.array(list(item_ids), pa.string()),
                   f.CATEGORIES: pa.array([list(c) for c in categories], pa.list_(pa.string())),
                   f.CONFIDENCES: pa.array([list(c) for c in confidences],
                                           pa.list_(pa.float32()))})


def write(directory: str, searcher, items: pa.Table, embeddings: np.ndarray,
          manifest: IndexManifest) -> IndexManifest:
  """Writes a searcher, its items and their embeddings (row order) and the manifest (last) into
  a new directory."""
  os.makedirs(directory)
  scann_api.serialize(searcher, os.path.join(directory, SCANN_DIR))
  pq.write_table(items, os.path.join(directory, ITEMS_FILE))
  np.save(os.path.join(directory, EMBEDDINGS_FILE), np.ascontiguousarray(embeddings, np.float32))
  files = {name: os.path.getsize(os.path.join(directory, name)) for name in _files(directory)}
  manifest = dataclasses.replace(manifest, files=files)
  with open(os.path.join(directory, MANIFEST_FILE), "w") as handle:
    handle.write(manifest.to_json())
  return manifest


def verify(directory: str) -> IndexManifest:
  """The manifest of a complete index directory, or IndexDirError naming what is wrong."""
  path = os.path.join(directory, MANIFEST_FILE)
  if not tf.io.gfile.exists(path):
    raise IndexDirError(f"{directory}: no {MANIFEST_FILE}: not an index or a partial one (a "
                        f"build that did not finish); rebuild it")
  with tf.io.gfile.GFile(path) as handle:
    manifest = IndexManifest.from_json(handle.read(), path)
  for name, size in sorted(manifest.files.items()):
    file_path = os.path.join(directory, name)
    actual = tf.io.gfile.stat(file_path).length if tf.io.gfile.exists(file_path) else None
    if actual != size:
      state = "is missing" if actual is None else f"has {actual} bytes, not {size}"
      raise IndexDirError(f"{directory}: {name} {state}; the index is partial or corrupt: "
                          f"rebuild it")
  return manifest


class ItemCatalog(Mapping[str, Item]):
  """The items an index holds, by id: lookups into its Parquet columns, not a million objects."""

  def __init__(self, table: pa.Table):
    self.item_ids = np.asarray(table.column(f.ITEM_ID).to_pylist(), dtype=object)
    self._rows = {item_id: row for row, item_id in enumerate(self.item_ids)}
    categories = table.column(f.CATEGORIES).combine_chunks()
    confidences = table.column(f.CONFIDENCES).combine_chunks()
    self._offsets = categories.offsets.to_numpy()
    self._categories = np.asarray(categories.values.to_pylist(), dtype=object)
    self._confidences = confidences.values.to_numpy()

  def primary_categories(self) -> np.ndarray:
    """Each row's primary (first, highest-confidence) category, "" when it has none."""
    starts, ends = self._offsets[:-1], self._offsets[1:]
    first = np.where(ends > starts, starts, 0)
    names = self._categories[first] if len(self._categories) else np.full(len(starts), "")
    return np.where(ends > starts, names, "").astype(object)

  def __getitem__(self, item_id: str) -> Item:
    row = self._rows[item_id]
    start, end = self._offsets[row], self._offsets[row + 1]
    return Item(tuple(self._categories[start:end]),
                tuple(float(c) for c in self._confidences[start:end]))

  def __contains__(self, item_id) -> bool:
    return item_id in self._rows

  def __iter__(self) -> Iterator[str]:
    return iter(self.item_ids)

  def __len__(self) -> int:
    return len(self.item_ids)


def read_embeddings(directory: str) -> np.ndarray:
  """The item embeddings of a local index directory, memory-mapped (read-only)."""
  return np.load(os.path.join(directory, EMBEDDINGS_FILE), mmap_mode="r")


def read_catalog(directory: str) -> ItemCatalog:
  with tf.io.gfile.GFile(os.path.join(directory, ITEMS_FILE), "rb") as handle:
    return ItemCatalog(pq.read_table(pa.BufferReader(handle.read())))


def local_copy(directory: str) -> str:
  """`directory` itself when local, else a local temporary copy (ScaNN reads local files)."""
  if "://" not in directory:
    return directory
  local = tempfile.mkdtemp(prefix="ctxrec-index-")
  for name in verify(directory).files:
    os.makedirs(os.path.dirname(os.path.join(local, name)), exist_ok=True)
    tf.io.gfile.copy(os.path.join(directory, name), os.path.join(local, name))
  tf.io.gfile.copy(os.path.join(directory, MANIFEST_FILE), os.path.join(local, MANIFEST_FILE))
  return local


def publish(source: str, index_root: str, model_version: str) -> str:
  """Copies a built index to INDEX_ROOT/<model_version>/ through a staging directory renamed
  into place, so readers see the old index or the new one, never a mix; returns the path."""
  final = os.path.join(index_root, versions.model_version(model_version, "index of model"))
  if "://" in index_root:  # object stores cannot rename a directory: the manifest goes last
    copy_tree(source, final)
    return final
  os.makedirs(index_root, exist_ok=True)
  staging = os.path.join(index_root, f".staging-{model_version}-{os.getpid()}-{time.time_ns()}")
  shutil.copytree(source, staging)
  verify(staging)
  if os.path.exists(final):
    retired = f"{staging}.retired"
    os.rename(final, retired)
    os.rename(staging, final)
    shutil.rmtree(retired)
  else:
    os.rename(staging, final)
  return final


def copy_tree(source: str, target: str) -> None:
  """Copies a local index directory to any filesystem, the manifest last."""
  names = [n for n in _files(source) if n != MANIFEST_FILE] + [MANIFEST_FILE]
  for name in names:
    tf.io.gfile.makedirs(os.path.dirname(os.path.join(target, name)))
    tf.io.gfile.copy(os.path.join(source, name), os.path.join(target, name), overwrite=True)
