"""Pseudo-context for one train example: its label, perhaps swapped for a popular sibling or an
item of another category, blurred.

Many train conversions carry no logged request context, so the model could not learn to use one
from them; a context derived from the positive label stands in for "the item the user was
looking at". A popular item of another category (as when the user browsed elsewhere), or of the
label's own category (by popularity), keeps the context from simply naming the label; jittered
confidences and dropped secondary categories keep it from being exact. How often each happens is
fitted from the train examples that do have a logged context (`fit`). Randomness comes from the
seed and the example's canonical bytes, so Beam bundling cannot change it.
"""
import hashlib
import dataclasses
from typing import Dict, Iterable, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from ctxrec.components.pseudo_context import config as config_lib
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


NO_CONTEXT = Context((), (), ())


class Outcome(NamedTuple):
  """What happened to one example; the executor counts each field."""
  real_context: bool = False  # the example kept its logged context
  augmented: bool = False
  other_category: bool = False
  substituted: bool = False
  no_substitute: bool = False  # substitution was drawn but the category has no other item


class ContextStats(NamedTuple):
  """How logged contexts relate to their labels: what pseudo-context imitates."""
  real: int = 0  # train examples with a logged context
  other_category: int = 0  # ... whose context's primary category is not the label's
  same_category: int = 0  # ... whose context shares the label's primary category
  substituted: int = 0  # ... of those, with an item other than the label

  def __add__(self, other: "ContextStats") -> "ContextStats":
    return ContextStats(*(a + b for a, b in zip(self, other)))


def _draw_skipping(ends: np.ndarray, skip: Optional[int],
                   rng: np.random.Generator) -> Optional[int]:
  """An index drawn by the weights whose cumulative sums are `ends`, never `skip`; None when
  nothing else has weight."""
  skipped = int(ends[skip] - (ends[skip - 1] if skip else 0)) if skip is not None else 0
  total = (int(ends[-1]) if len(ends) else 0) - skipped
  if total <= 0:
    return None
  target = int(rng.integers(total))
  if skip is not None and target >= ends[skip] - skipped:
    target += skipped  # step over the skipped entry's share
  return int(np.searchsorted(ends, target, side="right"))


class CategoryPool:
  """The train labels of one primary category, drawn in proportion to their label counts."""

  def __init__(self, counted: Iterable[Tuple[Item, int]]):
    ordered = sorted(counted, key=lambda entry: entry[0].item_id)  # independent of input order
    self._items = [item for item, _ in ordered]
    self._index = {item.item_id: i for i, item in enumerate(self._items)}
    self._ends = np.cumsum(np.asarray([count for _, count in ordered], dtype=np.int64))

  @property
  def total(self) -> int:
    return int(self._ends[-1]) if len(self._ends) else 0

  def draw(self, exclude: bytes, rng: np.random.Generator) -> Optional[Item]:
    """An item other than `exclude` by popularity, or None when the category has no other."""
    index = _draw_skipping(self._ends, self._index.get(exclude), rng)
    return None if index is None else self._items[index]


class LabelPools:
  """Every primary category's CategoryPool, and draws from categories other than a label's."""

  def __init__(self, pools: Iterable[Tuple[bytes, CategoryPool]]):
    ordered = sorted(pools, key=lambda entry: entry[0])
    self._categories = [category for category, _ in ordered]
    self._pools = [pool for _, pool in ordered]
    self._index = {category: i for i, category in enumerate(self._categories)}
    self._ends = np.cumsum([pool.total for pool in self._pools], dtype=np.int64)

  def get(self, category: bytes) -> Optional[CategoryPool]:
    index = self._index.get(category)
    return None if index is None else self._pools[index]

  def draw_other(self, category: bytes, rng: np.random.Generator) -> Optional[Item]:
    """A label of another primary category, categories weighted by their label counts."""
    index = _draw_skipping(self._ends, self._index.get(category), rng)
    return None if index is None else self._pools[index].draw(b"", rng)


def example_rng(seed: int, serialized: bytes) -> np.random.Generator:
  """A generator fixed by the seed and the example's bytes, the same in any Beam bundle."""
  digest = hashlib.sha256(f"{seed}:".encode() + serialized).digest()
  return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _values(example: tf.train.Example, name: str) -> list:
  feature = example.features.feature.get(name)  # `[name]` would insert a missing feature
  kind = feature.WhichOneof("kind") if feature is not None else None
  return list(getattr(feature, kind).value) if kind else []


def has_context(example: tf.train.Example) -> bool:
  """Whether the example carries a logged context (categories: a context always has some)."""
  return bool(_values(example, f.CONTEXT_CATEGORIES))


def read_context(example: tf.train.Example) -> Optional[Item]:
  """The example's logged context (item id may be b""), or None when it has none."""
  if not has_context(example):
    return None
  categories = _values(example, f.CONTEXT_CATEGORIES)
  ids = _values(example, f.CONTEXT_ITEM_ID)
  return Item(ids[0] if ids else b"", tuple(categories),
              tuple(float(c) for c in _values(example, f.CONTEXT_CONFIDENCES)))


def context_stats(serialized: bytes) -> ContextStats:
  """One train example's contribution to the statistics pseudo-context is fitted to."""
  example = tf.train.Example.FromString(serialized)
  context, label = read_context(example), read_label(example)
  if context is None or label is None:
    return ContextStats()
  if context.categories[0] != label.categories[0]:
    return ContextStats(real=1, other_category=1)
  return ContextStats(real=1, same_category=1, substituted=int(context.item_id != label.item_id))


FITTED = ("p_other_category", "p_substitute")  # the probabilities a config may leave to fitting
_FALLBACKS = {"p_other_category": config_lib.FALLBACK_P_OTHER_CATEGORY,
              "p_substitute": config_lib.FALLBACK_P_SUBSTITUTE}


def estimates(stats: ContextStats) -> Dict[str, Optional[float]]:
  """Each fitted probability as the logged contexts measure it; None where they are too few."""
  enough = stats.real >= config_lib.MIN_REAL_CONTEXTS_TO_FIT
  return {"p_other_category": stats.other_category / stats.real if enough else None,
          "p_substitute": (stats.substituted / stats.same_category
                           if enough and stats.same_category else None)}


def fit(config: PseudoContextConfig, stats: ContextStats) -> PseudoContextConfig:
  """The config with the probabilities left to fitting set from the logged contexts' statistics
  (or fallbacks when there are too few of them)."""
  measured = estimates(stats)
  chosen = {}
  for name in FITTED:
    given = getattr(config, name)
    chosen[name] = (given if given is not None
                    else measured[name] if measured[name] is not None else _FALLBACKS[name])
  return dataclasses.replace(config, **chosen)


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


def _source(label: Item, pools: LabelPools, config: PseudoContextConfig,
            rng: np.random.Generator) -> Tuple[Item, Outcome]:
  """The item the pseudo-context shows: from another category, a sibling, or the label."""
  if rng.random() < config.p_other_category:
    other = pools.draw_other(label.categories[0], rng)
    if other is not None:
      return other, Outcome(augmented=True, other_category=True)
  if rng.random() < config.p_substitute:
    substitute = None
    pool = pools.get(label.categories[0])
    if pool is not None:
      substitute = pool.draw(label.item_id, rng)
    if substitute is None:
      return label, Outcome(augmented=True, no_substitute=True)
    return substitute, Outcome(augmented=True, substituted=True)
  return label, Outcome(augmented=True)


def pseudo_context(label: Item, pools: LabelPools, config: PseudoContextConfig,
                   rng: np.random.Generator) -> Tuple[Optional[Context], Outcome]:
  """Draws the context a train example shows, or None (prob. 1 - rate) to leave it empty."""
  if not config.fitted:
    raise ValueError("pseudo_context needs fitted probabilities: call fit(config, stats) first")
  if rng.random() >= config.rate:
    return None, Outcome()
  source, outcome = _source(label, pools, config, rng)
  # A drawn-but-impossible substitution must not name the label, so it shows no item id.
  item_ids = ((source.item_id,) if config.mode == MODE_ITEM and not outcome.no_substitute
              else ())
  categories, confidences = perturb(source, config, rng)
  return Context(item_ids, categories, confidences), outcome


def write_context(example: tf.train.Example, context: Context) -> None:
  """Sets the three context features of `example` in place."""
  feature = example.features.feature
  feature[f.CONTEXT_ITEM_ID].CopyFrom(
      tf.train.Feature(bytes_list=tf.train.BytesList(value=context.item_ids)))
  feature[f.CONTEXT_CATEGORIES].CopyFrom(
      tf.train.Feature(bytes_list=tf.train.BytesList(value=context.categories)))
  feature[f.CONTEXT_CONFIDENCES].CopyFrom(
      tf.train.Feature(float_list=tf.train.FloatList(value=context.confidences)))


def augment(serialized: bytes, pools: LabelPools,
            config: PseudoContextConfig) -> Tuple[bytes, Outcome]:
  """One serialized train example with its context, and what happened: its logged context
  untouched (use_real_context), else a pseudo-context, or none (prob. 1 - rate)."""
  example = tf.train.Example.FromString(serialized)
  logged = has_context(example)
  if config.use_real_context and logged:
    return serialized, Outcome(real_context=True)
  label = read_label(example)
  if label is None:
    return serialized, Outcome()
  # Map fields serialize in no fixed order: hash and write the canonical (key-sorted) bytes.
  rng = example_rng(config.seed, example.SerializeToString(deterministic=True))
  context, outcome = pseudo_context(label, pools, config, rng)
  if context is None:
    if not logged:
      return serialized, outcome
    context = NO_CONTEXT  # a logged context left unused must not reach training either
  else:
    example.features.feature[f.PSEUDO_CONTEXT].int64_list.value[:] = [1]
  write_context(example, context)
  return example.SerializeToString(deterministic=True), outcome
