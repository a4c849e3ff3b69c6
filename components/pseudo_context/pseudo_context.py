"""Pseudo-context for one train example: its label, perhaps swapped for a popular sibling, blurred.

Train examples carry no request context, so the model could never learn to use one; a context
derived from the positive label stands in for "the item the user was looking at". Substitution
by another item of the label's primary category (by popularity) keeps the context from simply
naming the label; jittered confidences and dropped secondary categories keep it from being exact.
Randomness comes from the seed and the example's canonical bytes, so Beam bundling cannot change it.
"""
import hashlib
from typing import Iterable, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from ctxrec.components.pseudo_context.config import MODE_ITEM, PseudoContextConfig
from ctxrec.transform import features as f

MIN_CONFIDENCE = 0.01
MAX_CONFIDENCE = 1.0


class Item(NamedTuple):
  """A train label as the sampler keeps it: id, categories (primary first), confidences."""
  item_id: bytes
  categories: Tuple[bytes, ...]
  confidences: Tuple[float, ...]


class Context(NamedTuple):
  """The three context features, in the shape of the real context (0 or 1 item ids)."""
  item_ids: Tuple[bytes, ...]
  categories: Tuple[bytes, ...]
  confidences: Tuple[float, ...]


class Outcome(NamedTuple):
  """What happened to one example; the executor counts each field."""
  augmented: bool = False
  substituted: bool = False
  no_substitute: bool = False  # substitution was drawn but the category has no other item


class CategoryPool:
  """The train labels of one primary category, drawn in proportion to their label counts."""

  def __init__(self, counted: Iterable[Tuple[Item, int]]):
    ordered = sorted(counted, key=lambda entry: entry[0].item_id)  # independent of input order
    self._items = [item for item, _ in ordered]
    self._index = {item.item_id: i for i, item in enumerate(self._items)}
    self._counts = np.asarray([count for _, count in ordered], dtype=np.int64)
    self._ends = np.cumsum(self._counts)

  def draw(self, exclude: bytes, rng: np.random.Generator) -> Optional[Item]:
    """An item other than `exclude` by popularity, or None when the category has no other."""
    skip = self._index.get(exclude)
    skipped = int(self._counts[skip]) if skip is not None else 0
    total = (int(self._ends[-1]) if len(self._ends) else 0) - skipped
    if total <= 0:
      return None
    target = int(rng.integers(total))
    if skip is not None and target >= self._ends[skip] - skipped:
      target += skipped  # step over the excluded item's share
    return self._items[int(np.searchsorted(self._ends, target, side="right"))]


def example_rng(seed: int, serialized: bytes) -> np.random.Generator:
  """A generator fixed by the seed and the example's bytes, the same in any Beam bundle."""
  digest = hashlib.sha256(f"{seed}:".encode() + serialized).digest()
  return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _values(example: tf.train.Example, name: str) -> list:
  feature = example.features.feature.get(name)  # `[name]` would insert a missing feature
  kind = feature.WhichOneof("kind") if feature is not None else None
  return list(getattr(feature, kind).value) if kind else []


def read_label(example: tf.train.Example) -> Optional[Item]:
  """The example's positive label, or None when it lacks an id or consistent categories."""
  ids = _values(example, f.LABEL_ITEM_ID)
  categories = _values(example, f.LABEL_CATEGORIES)
  confidences = _values(example, f.LABEL_CONFIDENCES)
  if len(ids) != 1 or not categories or len(categories) != len(confidences):
    return None
  return Item(ids[0], tuple(categories), tuple(float(c) for c in confidences))


def perturb(item: Item, config: PseudoContextConfig,
            rng: np.random.Generator) -> Tuple[Tuple[bytes, ...], Tuple[float, ...]]:
  """Jitters confidences (log-normal, clipped) and drops secondary categories; keeps the primary."""
  noise = np.exp(rng.normal(0.0, config.confidence_jitter, len(item.confidences)))
  confidences = np.clip(np.asarray(item.confidences) * noise, MIN_CONFIDENCE, MAX_CONFIDENCE)
  keep = rng.random(len(item.categories)) >= config.p_drop_secondary
  keep[0] = True
  return (tuple(c for c, k in zip(item.categories, keep) if k),
          tuple(float(w) for w, k in zip(confidences, keep) if k))


def pseudo_context(label: Item, pool: Optional[CategoryPool], config: PseudoContextConfig,
                   rng: np.random.Generator) -> Tuple[Optional[Context], Outcome]:
  """Draws the context a train example shows, or None (prob. 1 - rate) to leave it empty."""
  if rng.random() >= config.rate:
    return None, Outcome()
  source, substituted, no_substitute = label, False, False
  if rng.random() < config.p_substitute:
    substitute = pool.draw(label.item_id, rng) if pool is not None else None
    source = substitute if substitute is not None else label
    substituted, no_substitute = substitute is not None, substitute is None
  # A drawn-but-impossible substitution must not name the label, so it shows no item id.
  item_ids = (source.item_id,) if config.mode == MODE_ITEM and not no_substitute else ()
  categories, confidences = perturb(source, config, rng)
  return (Context(item_ids, categories, confidences),
          Outcome(augmented=True, substituted=substituted, no_substitute=no_substitute))


def write_context(example: tf.train.Example, context: Context) -> None:
  """Sets the three context features of `example` in place."""
  feature = example.features.feature
  feature[f.CONTEXT_ITEM_ID].CopyFrom(
      tf.train.Feature(bytes_list=tf.train.BytesList(value=context.item_ids)))
  feature[f.CONTEXT_CATEGORIES].CopyFrom(
      tf.train.Feature(bytes_list=tf.train.BytesList(value=context.categories)))
  feature[f.CONTEXT_CONFIDENCES].CopyFrom(
      tf.train.Feature(float_list=tf.train.FloatList(value=context.confidences)))


def augment(serialized: bytes, pools: Mapping[bytes, CategoryPool],
            config: PseudoContextConfig) -> Tuple[bytes, Outcome]:
  """One serialized train example with its pseudo-context (or untouched), and what happened."""
  example = tf.train.Example.FromString(serialized)
  label = read_label(example)
  if label is None:
    return serialized, Outcome()
  # Map fields serialize in no fixed order: hash and write the canonical (key-sorted) bytes.
  rng = example_rng(config.seed, example.SerializeToString(deterministic=True))
  context, outcome = pseudo_context(label, pools.get(label.categories[0]), config, rng)
  if context is None:
    return serialized, outcome
  write_context(example, context)
  return example.SerializeToString(deterministic=True), outcome
