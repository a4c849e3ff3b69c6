"""Pseudo-sessions for train examples: a view derived from the label (the label, perhaps swapped
for a popular sibling or an item of another category, blurred) among other views drawn in the
shape of the logged sessions.

Many train conversions carry no logged session, so the model could not learn to use one from
them; a session around a view derived from the positive label stands in for "what the user was
looking at". A popular item of another category (as when the user browsed elsewhere), or of the
label's own category (by popularity), keeps the session from simply naming the label; jittered
confidences and dropped secondary categories keep it from being exact. How often each happens,
how long sessions are, where the label-derived view sits, how many other views share the label's
category and how far apart views are is fitted from the train examples that do have a logged
session (`context_stats`, `fit`). Randomness comes from the seed and the example's canonical
bytes, so Beam bundling cannot change it.

In a logged session the label-derived view is the view of the label itself, else the most recent
view on the label's primary category; a session with neither counts as "other category". Its
gaps are those between the request and view 0 and between consecutive views.
"""
import dataclasses
import hashlib
import math
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from ctxrec.components import example_features as ef
from ctxrec.components import session_features
from ctxrec.components.pseudo_context import config as config_lib
from ctxrec.components.pseudo_context.config import FITTED, MODE_ITEM, PseudoContextConfig
from ctxrec.components.request_context import NO_CONTEXT, Context, View
from ctxrec.transform import features as f

MIN_CONFIDENCE = 0.01
MAX_CONFIDENCE = 1.0
GAP_BINS_PER_OCTAVE = 4  # gap histogram bins per doubling of seconds
GAP_BINS = 20 * GAP_BINS_PER_OCTAVE  # the last bin holds every gap from about 9 days on
MIN_GAP_SECONDS = 1  # a drawn gap is at least this: ages grow with position, view 0 is past


class Item(NamedTuple):
  """A train label as the sampler keeps it: id, categories (primary first), confidences."""
  item_id: bytes
  categories: Tuple[bytes, ...]
  confidences: Tuple[float, ...]


class Outcome(NamedTuple):
  """What happened to one example; the executor sums each field (a bool counts 1)."""
  real_context: bool = False  # the example kept its logged session
  augmented: bool = False
  other_category: bool = False  # the label-derived view shows another category
  substituted: bool = False
  no_substitute: bool = False  # substitution was drawn but the category has no other item
  views: int = 0  # views of the pseudo-session
  on_category_views: int = 0  # ... other than the label-derived one, on the label's category


def _add_counts(a: Tuple[int, ...], b: Tuple[int, ...]) -> Tuple[int, ...]:
  """Element-wise sum of two histograms, the shorter padded with zeros."""
  width = max(len(a), len(b))
  return tuple((a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(width))


class ContextStats(NamedTuple):
  """How logged sessions relate to their labels: what pseudo-sessions imitate. Summable."""
  real: int = 0  # train examples with a logged session
  other_category: int = 0  # ... with no view of the label or its primary category
  same_category: int = 0  # ... with one, the label-derived view
  substituted: int = 0  # ... of those, whose label-derived view is not the label
  lengths: Tuple[int, ...] = ()  # sessions per length 1, 2, ... (up to session_views)
  positions: Tuple[int, ...] = ()  # label-derived views per position 0, 1, ...
  on_category: int = 0  # other views on the label's primary category
  off_category: int = 0  # other views off it
  gaps: Tuple[int, ...] = ()  # gaps per log-spaced bin (gap_bin)

  def __add__(self, other: "ContextStats") -> "ContextStats":
    return ContextStats(*(_add_counts(a, b) if isinstance(a, tuple) else a + b
                          for a, b in zip(self, other)))


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


def read_label(example: tf.train.Example) -> Optional[Item]:
  """The example's positive label, or None when it lacks an id or consistent categories."""
  ids = ef.values(example, f.LABEL_ITEM_ID)
  categories = ef.values(example, f.LABEL_CATEGORIES)
  confidences = ef.values(example, f.LABEL_CONFIDENCES)
  if len(ids) != 1 or not categories or len(categories) != len(confidences):
    return None
  return Item(ids[0], tuple(categories), tuple(float(c) for c in confidences))


def gap_bin(seconds: int) -> int:
  """The log-spaced histogram bin of a gap: GAP_BINS_PER_OCTAVE per doubling, 0 and 1 s in 0."""
  if seconds <= 1:
    return 0
  return min(int(math.floor(GAP_BINS_PER_OCTAVE * math.log2(seconds))), GAP_BINS - 1)


def _one_hot(index: int, width: int) -> Tuple[int, ...]:
  return tuple(int(i == index) for i in range(width))


def _primary(view: View) -> str:
  return view.categories[0] if view.categories else ""


def label_slot(session: Context, label: Item) -> Optional[int]:
  """Where a logged session shows its label-derived view: the view of the label, else the most
  recent view on the label's primary category; None when it has neither."""
  label_id, primary = label.item_id.decode(), label.categories[0].decode()
  views = session.views
  if label_id:
    for index, view in enumerate(views):
      if view.item_id == label_id:
        return index
  return next((i for i, view in enumerate(views) if _primary(view) == primary), None)


def _gaps(session: Context) -> Tuple[int, ...]:
  """The histogram of a session's gaps: request to view 0, then view to view."""
  ages = [view.seconds_ago for view in session.views]
  counts = [0] * GAP_BINS
  for gap in [ages[0]] + [b - a for a, b in zip(ages, ages[1:])]:
    counts[gap_bin(max(gap, 0))] += 1
  return tuple(counts)


def context_stats(serialized: bytes,
                  session_views: int = f.DEFAULT_SESSION_VIEWS) -> ContextStats:
  """One train example's contribution to the statistics pseudo-sessions are fitted to (its
  first `session_views` views, those the model reads)."""
  example = tf.train.Example.FromString(serialized)
  session = session_features.read_session(example).truncated(session_views)
  label = read_label(example)
  if session.empty or label is None:
    return ContextStats()
  length = len(session.views)
  shape = dict(real=1, lengths=_one_hot(length - 1, session_views), gaps=_gaps(session))
  slot = label_slot(session, label)
  if slot is None:
    return ContextStats(other_category=1, off_category=length - 1, **shape)
  primary = label.categories[0].decode()
  on = sum(_primary(v) == primary for i, v in enumerate(session.views) if i != slot)
  return ContextStats(
      same_category=1, substituted=int(session.views[slot].item_id != label.item_id.decode()),
      positions=_one_hot(slot, session_views), on_category=on, off_category=length - 1 - on,
      **shape)


def _shares(counts: Sequence[int]) -> Tuple[float, ...]:
  """A histogram as shares, trailing empty bins dropped."""
  total = sum(counts)
  last = max(i for i, count in enumerate(counts) if count)
  return tuple(count / total for count in counts[:last + 1])


def _median_gap(gaps: Sequence[int]) -> float:
  """The median gap in seconds: the geometric centre of the bin holding the middle gap."""
  cumulative = np.cumsum(gaps)
  middle = int(np.searchsorted(cumulative, cumulative[-1] / 2.0))
  return round(2.0 ** ((middle + 0.5) / GAP_BINS_PER_OCTAVE), 1)


def estimates(stats: ContextStats) -> Dict[str, object]:
  """Each fitted parameter as the logged sessions measure it; None where they are too few."""
  if stats.real < config_lib.MIN_REAL_CONTEXTS_TO_FIT:
    return {name: None for name in FITTED}
  same, others = stats.same_category, stats.on_category + stats.off_category
  return {"p_other_category": stats.other_category / stats.real,
          "p_substitute": stats.substituted / same if same else None,
          "session_lengths": _shares(stats.lengths),
          "label_positions": _shares(stats.positions) if same else None,
          "p_on_category": stats.on_category / others if others else None,
          "view_gap_seconds": _median_gap(stats.gaps)}


def fit(config: PseudoContextConfig, stats: ContextStats) -> PseudoContextConfig:
  """The config with the parameters left to fitting set from the logged sessions' statistics
  (or fallbacks where they are too few)."""
  measured = estimates(stats)
  chosen = {}
  for name in FITTED:
    given = getattr(config, name)
    chosen[name] = (given if given is not None
                    else measured[name] if measured[name] is not None
                    else config_lib.FALLBACKS[name])
  return dataclasses.replace(config, **chosen)


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
  """The item the label-derived view shows: from another category, a sibling, or the label."""
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


def _draw_index(weights: Sequence[float], rng: np.random.Generator) -> int:
  """An index drawn in proportion to `weights` (0 when none has weight)."""
  ends = np.cumsum(np.asarray(weights, dtype=np.float64))
  if not len(ends) or ends[-1] <= 0.0:
    return 0
  return min(int(np.searchsorted(ends, rng.random() * ends[-1], side="right")), len(ends) - 1)


def _view(item: Item, show_id: bool, config: PseudoContextConfig,
          rng: np.random.Generator) -> View:
  """The blurred view of `item` (age set later); its id only in item mode and when shown."""
  categories, confidences = perturb(item, config, rng)
  item_id = item.item_id.decode() if show_id and config.mode == MODE_ITEM else ""
  return View(item_id, tuple(c.decode() for c in categories), confidences)


def _other_view(label: Item, pools: LabelPools, config: PseudoContextConfig,
                rng: np.random.Generator) -> Tuple[Optional[View], bool]:
  """A view other than the label-derived one, and whether it is on the label's category: a
  popular sibling (never the label) with p_on_category, else an item of another category; None
  when the pool drawn from is empty."""
  on_category = rng.random() < config.p_on_category
  if on_category:
    pool = pools.get(label.categories[0])
    item = pool.draw(label.item_id, rng) if pool is not None else None
  else:
    item = pools.draw_other(label.categories[0], rng)
  return (None if item is None else _view(item, True, config, rng)), on_category


def _aged(views: Sequence[View], config: PseudoContextConfig,
          rng: np.random.Generator) -> Tuple[View, ...]:
  """The views with ages growing by log-normal gaps around view_gap_seconds (each >= 1 s)."""
  noise = np.exp(rng.normal(0.0, config.gap_jitter, len(views)))
  gaps = np.maximum(np.rint(config.view_gap_seconds * noise), MIN_GAP_SECONDS).astype(np.int64)
  ages = np.cumsum(gaps)
  return tuple(dataclasses.replace(view, seconds_ago=int(age)) for view, age in zip(views, ages))


def pseudo_session(label: Item, pools: LabelPools, config: PseudoContextConfig,
                   rng: np.random.Generator) -> Tuple[Optional[Context], Outcome]:
  """Draws the session a train example shows, or None (prob. 1 - rate) to leave it empty."""
  if not config.fitted:
    raise ValueError("pseudo_session needs fitted parameters: call fit(config, stats) first")
  if rng.random() >= config.rate:
    return None, Outcome()
  length = 1 + _draw_index(config.session_lengths[:config.session_views], rng)
  position = _draw_index(config.label_positions[:length], rng)
  source, outcome = _source(label, pools, config, rng)
  # A drawn-but-impossible substitution must not name the label, so it shows no item id.
  label_view = _view(source, not outcome.no_substitute, config, rng)
  views: List[View] = []
  on_category = 0
  for slot in range(length):
    if slot == position:
      views.append(label_view)
      continue
    view, on = _other_view(label, pools, config, rng)
    if view is not None:  # an empty pool: the session is a view shorter
      views.append(view)
      on_category += on
  outcome = outcome._replace(views=len(views), on_category_views=on_category)
  return Context(_aged(views, config, rng)), outcome


def augment(serialized: bytes, pools: LabelPools,
            config: PseudoContextConfig) -> Tuple[bytes, Outcome]:
  """One serialized train example with its session, and what happened: its logged session
  untouched (use_real_context), else a pseudo-session, or none (prob. 1 - rate)."""
  example = tf.train.Example.FromString(serialized)
  session = session_features.read_session(example)
  if config.use_real_context and not session.empty:
    return serialized, Outcome(real_context=True)
  label = read_label(example)
  if label is None:
    return serialized, Outcome()
  # Map fields serialize in no fixed order: hash and write the canonical (key-sorted) bytes.
  rng = example_rng(config.seed, example.SerializeToString(deterministic=True))
  context, outcome = pseudo_session(label, pools, config, rng)
  if context is None:
    if not session.views:
      return serialized, outcome
    context = NO_CONTEXT  # a logged session left unused must not reach training either
  else:
    example.features.feature[f.PSEUDO_CONTEXT].int64_list.value[:] = [1]
  session_features.write_session(example, context)
  return example.SerializeToString(deterministic=True), outcome
