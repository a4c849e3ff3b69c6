"""Synthetic e-commerce logs from a known generative process, so models can be compared to oracles.

Generative process. All randomness comes from ``np.random.default_rng`` streams spawned from
``SeedSequence(seed)``: one for the catalog, one for the demographic groups, one per chunk of
``user_chunk_size`` users (so the output depends on config and seed only, chunk size included).

Categories. ``C = num_categories`` categories with ids ``c000``, ``c001``, ... (zero padded). A
random permutation gives each category a popularity rank r_c; the global category popularity is
``pi_c ∝ 1 / (r_c + 1) ** category_zipf_exponent``, or, when ``category_lognormal_sigma > 0``,
``pi_c ∝ LogNormal(0, category_lognormal_sigma)`` drawn independently per category (no ranks).

Items. ``num_items`` items with ids ``i0000000``, ... Each category first gets
``min_items_per_category`` items, the other items draw their primary category from ``pi``, and the
assignment is shuffled. Within its primary category c an item gets a uniformly random rank r and
popularity ``pop_c(i) ∝ 1 / (r + 1) ** item_zipf_exponent`` (or, when ``item_lognormal_sigma >
0``, ``∝ LogNormal(0, item_lognormal_sigma)`` drawn per item), normalised to sum to 1 over the
items whose primary category is c. Each item has a latent style ``style_i``, uniform over
``{0, ..., num_styles - 1}``. The primary category's confidence is ``U(0.6, 1.0)``. An item also has
0, 1 or 2 (equally likely) secondary categories, distinct from the primary and from each other,
uniform over the other categories, each with confidence ``U(0.05, 0.5)``. With probability
``p_unsorted_categories`` an item lists its categories (and their confidences, which move with
them) in a uniformly random order, otherwise primary first; the primary is always the category
with the highest confidence.

Users. ``num_users`` users with ids ``u0000000``, ... Country and age bucket are drawn independently
from ``country_weights`` and ``age_bucket_weights``. Each (country, age bucket) group g has the
category preference ``q_g = (1 - group_pi_mix) * Dirichlet(group_dirichlet_alpha * 1_C)
+ group_pi_mix * pi``. A user has ``k ~ U{core_interests_min, ..., core_interests_max}`` core
categories drawn from ``q_g`` without replacement (Gumbel top-k), weighted by
``Dirichlet(interest_weight_alpha * 1_k)``: the long-term interest ``theta_u``, zero elsewhere.
A user has a style ``style_u`` uniform over ``{0, ..., num_styles - 1}``, and is new with
probability ``new_user_share``.

Sessions. A user's activity is ``a_u ~ LogNormal(-s^2 / 2, s)`` (mean 1, ``s = activity_sigma``).
An existing user's window is all ``T = num_days * 8`` three-hour slots after ``start_timestamp``; a
new user's is the last ``T_new = min(new_user_days, num_days) * 8`` slots (so their first
conversion falls at the end of the log). They draw ``min(Poisson(sessions_per_user_mean * a_u *
W / T), W)`` sessions (W = the window's slots: the same daily rate for both), each in a uniformly
drawn slot of their window; a slot drawn twice by a user holds one session, so a user's sessions
start at least 2 hours apart. A session starts at a uniform whole second in the first hour of its
slot. Its intent category c is drawn from ``theta_u`` with probability ``p_follow``, otherwise
from ``pi``.

Views and conversions. A session converts with probability ``p_convert``. A converting session is
direct with probability ``p_convert_direct``: it has no views, only the conversion, at the session
start. Any other session has ``n = 1 + Poisson(views_per_session_mean)`` views: the first at the
session start, each next one 10 to 120 s (uniform whole seconds) after the previous. Each view,
independently, is off-intent with probability ``p_offcategory_view``: its category is drawn from
``pi`` (it may equal c by chance) and its item ``∝ pop`` within that category; otherwise its item
is drawn ``∝ pop_c``. A non-direct converting session ends with one conversion 30 to 600 s after
its last view. The converted item: in a non-direct session, with probability ``p_convert_viewed``
look at the item of a uniformly chosen view position; if its primary category is c, convert on
it. Otherwise (or with probability ``1 - p_convert_viewed``, or in a direct session) a fresh item
of c drawn with ``P(i | c, u) ∝ pop_c(i) * (1 + taste_strength * [style_i == style_u])`` (drawn as
a mixture: with probability ``beta M / (1 + beta M)``, ``M = M(c, style_u)`` the summed pop_c of
c's items of the user's style, ``∝ pop_c`` among those items, else ``∝ pop_c``).

Output, in ``out_dir`` (written to a temporary folder beside it, then moved into place):

- ``events.parquet``: user_id, item_id, event_type (view or conversion), timestamp (int64 epoch
  seconds); sorted by user, then timestamp (a conversion follows the views of its session).
- ``items.parquet``: item_id, categories (list, primary first unless unsorted, see Items),
  confidences (list<float32>, aligned with categories).
- ``users.parquet``: user_id, country, age_bucket.
- ``ground_truth.parquet``: one row per conversion: user_id, item_id, timestamp, intent_category,
  last_view_item_id (the session's last view, the real context of the conversion; "" in a direct
  session), interest_categories, interest_weights, user_style (int32), direct (bool). Its schema
  metadata key ``ctxrec`` holds JSON: p_follow, p_convert, p_convert_viewed,
  views_per_session_mean, p_offcategory_view, p_convert_direct, num_styles, taste_strength,
  category_popularity (pi by category id), seed and the whole config.
- ``ground_truth_items.parquet``: item_id, primary_category, popularity (pop_c(i)), style (int32).

The same config and seed give byte-identical files.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ctxrec.synthetic.profiles import GeneratorConfig
from ctxrec.transform import features as f

Rng = np.random.Generator

SLOT_SECONDS = 3 * 3600
SLOTS_PER_DAY = 24 * 3600 // SLOT_SECONDS
SESSION_START_WINDOW_SECONDS = 3600
VIEW_GAP_SECONDS = (10, 120)
CONVERSION_GAP_SECONDS = (30, 600)
PRIMARY_CONFIDENCE = (0.6, 1.0)
SECONDARY_CONFIDENCE = (0.05, 0.5)
MAX_SECONDARY_CATEGORIES = 2
METADATA_KEY = b"ctxrec"
PARQUET_OPTIONS = {"compression": "snappy", "use_dictionary": True, "write_statistics": True}
# Ground-truth columns added by the taste / direct-session process (synthetic data only).
GT_USER_STYLE = "user_style"
GT_DIRECT = "direct"
GT_STYLE = "style"
NO_ITEM = ""  # last_view_item_id of a direct session.

_STRING = pa.string()
EVENTS_SCHEMA = pa.schema([(f.USER_ID, _STRING), (f.ITEM_ID, _STRING), (f.EVENT_TYPE, _STRING),
                           (f.TIMESTAMP, pa.int64())])
ITEMS_SCHEMA = pa.schema([(f.ITEM_ID, _STRING), (f.CATEGORIES, pa.list_(_STRING)),
                          (f.CONFIDENCES, pa.list_(pa.float32()))])
USERS_SCHEMA = pa.schema([(f.USER_ID, _STRING), (f.COUNTRY, _STRING), (f.AGE_BUCKET, _STRING)])
GROUND_TRUTH_SCHEMA = pa.schema([
    (f.USER_ID, _STRING),
    (f.ITEM_ID, _STRING),
    (f.TIMESTAMP, pa.int64()),
    (f.GT_INTENT_CATEGORY, _STRING),
    (f.GT_LAST_VIEW_ITEM_ID, _STRING),
    (f.GT_INTEREST_CATEGORIES, pa.list_(_STRING)),
    (f.GT_INTEREST_WEIGHTS, pa.list_(pa.float64())),
    (GT_USER_STYLE, pa.int32()),
    (GT_DIRECT, pa.bool_()),
])
GROUND_TRUTH_ITEMS_SCHEMA = pa.schema([(f.ITEM_ID, _STRING), (f.GT_PRIMARY_CATEGORY, _STRING),
                                       (f.GT_POPULARITY, pa.float64()), (GT_STYLE, pa.int32())])
OUTPUT_FILES = tuple(f"{stem}.parquet" for stem in
                     (f.EVENTS, f.ITEMS, f.USERS, f.GROUND_TRUTH, f.GROUND_TRUTH_ITEMS))


@dataclass(frozen=True)
class GenerationSummary:
  """Row counts of one generation run, for logs and benchmarks."""

  users: int
  items: int
  sessions: int
  events: int
  views: int
  conversions: int
  elapsed_seconds: float


@dataclass(frozen=True)
class _Groups:
  """Items grouped (e.g. by category), with one sorted key array that samples any group ∝ weight.

  Group g's items are order[offsets[g]:offsets[g+1]]; keys holds g + the within-group CDF.
  """

  order: np.ndarray
  offsets: np.ndarray
  keys: np.ndarray

  def sample(self, groups: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Item indices drawn ∝ weight within each given (non-empty) group (inverse CDF)."""
    position = np.searchsorted(self.keys, groups + uniforms, side="right")
    return self.order[np.clip(position, self.offsets[groups], self.offsets[groups + 1] - 1)]


@dataclass(frozen=True)
class _Catalog:
  """Category popularity, item styles and sampling tables, shared by every user chunk."""

  pi: np.ndarray  # (C,) global category popularity.
  pi_cdf: np.ndarray  # (C,) cumulative pi.
  primary: np.ndarray  # (N,) primary category index per item.
  popularity: np.ndarray  # (N,) pop_c(i) within the primary category.
  style: np.ndarray  # (N,) latent style per item.
  style_mass: np.ndarray  # (C, S) M(c, s): summed pop_c of c's items of style s.
  by_category: _Groups  # Groups c: items of primary category c, ∝ pop_c.
  by_category_style: _Groups  # Groups c * S + s: items of c with style s, ∝ pop_c.
  category_names: pa.Array
  item_names: pa.Array
  item_names_or_none: pa.Array  # item_names, then NO_ITEM at index N.


@dataclass(frozen=True)
class _Users:
  """One chunk of users: demographics, sparse long-term interests, style, newness."""

  country: np.ndarray  # (n,)
  age: np.ndarray  # (n,)
  num_interests: np.ndarray  # (n,) k_u.
  interests: np.ndarray  # (n, k_max) category indices in draw order, -1 past k_u.
  weights: np.ndarray  # (n, k_max) theta_u over `interests`, 0 past k_u.
  style: np.ndarray  # (n,) style_u.
  is_new: np.ndarray  # (n,) bool: sessions only in the last new_user_days.


@dataclass(frozen=True)
class _Sessions:
  """One chunk's sessions, sorted by user then start."""

  user: np.ndarray  # (S,) user index within the chunk.
  start: np.ndarray  # (S,) epoch seconds.
  intent: np.ndarray  # (S,) category index.
  style: np.ndarray  # (S,) the user's style.


@dataclass(frozen=True)
class _Events:
  """One chunk's events in output order, and where its conversions are."""

  session: np.ndarray  # (E,) session index.
  item: np.ndarray  # (E,) item index.
  timestamp: np.ndarray  # (E,) epoch seconds.
  is_conversion: np.ndarray  # (E,) bool.
  conversions: np.ndarray  # (K,) event indices of the conversions.
  last_view: np.ndarray  # (K,) item index of the session's last view, -1 if direct (no views).


@dataclass(frozen=True)
class _ChunkTables:
  """The rows one user chunk adds to each per-user file."""

  events: pa.Table
  users: pa.Table
  ground_truth: pa.Table
  sessions: int


# ---- Small array helpers. ----


def _names(prefix: str, start: int, stop: int, total: int, min_width: int) -> pa.Array:
  """Zero-padded ids wide enough for `total`, so lexical order equals numeric order."""
  width = max(min_width, len(str(max(total - 1, 0))))
  return pa.array([f"{prefix}{i:0{width}d}" for i in range(start, stop)], _STRING)


def _zipf(ranks: np.ndarray, exponent: float) -> np.ndarray:
  """Unnormalised Zipf weights 1/(rank+1)^s."""
  return (ranks + 1.0)**-exponent


def _normalised(weights: tuple) -> np.ndarray:
  """Probabilities from possibly unnormalised weights."""
  array = np.asarray(weights, dtype=np.float64)
  return array / array.sum()


def _ragged(matrix: np.ndarray, lengths: np.ndarray) -> np.ndarray:
  """Row-major flattening of the first `lengths[r]` entries of each row r."""
  return matrix[np.arange(matrix.shape[1])[None, :] < lengths[:, None]]


def _list_array(values: pa.Array, lengths: np.ndarray) -> pa.Array:
  """A list column from flat values and per-row lengths."""
  offsets = np.zeros(lengths.size + 1, dtype=np.int32)
  np.cumsum(lengths, out=offsets[1:])
  return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def _uniform_seconds(uniforms: np.ndarray, bounds: tuple) -> np.ndarray:
  """Whole seconds uniform in [low, high] from U[0, 1) draws."""
  low, high = bounds
  return low + (uniforms * (high - low + 1)).astype(np.int64)


def _from_cdf(cdf: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
  """Indices drawn from a discrete distribution given its cumulative sums."""
  return np.minimum(np.searchsorted(cdf, uniforms, side="right"), cdf.size - 1)


# ---- Catalog. ----


def _category_popularity(config: GeneratorConfig, rng: Rng) -> np.ndarray:
  """pi: Zipf over a random popularity order of the categories, or log-normal weights."""
  if config.category_lognormal_sigma > 0:
    weights = rng.lognormal(0.0, config.category_lognormal_sigma, config.num_categories)
  else:
    ranks = rng.permutation(config.num_categories).astype(np.float64)
    weights = _zipf(ranks, config.category_zipf_exponent)
  return weights / weights.sum()


def _primary_categories(config: GeneratorConfig, pi: np.ndarray, rng: Rng) -> np.ndarray:
  """Primary category per item: a guaranteed few per category, the rest drawn from pi."""
  fixed = np.repeat(np.arange(config.num_categories), config.min_items_per_category)
  rest = rng.choice(config.num_categories, size=config.num_items - fixed.size, p=pi)
  return rng.permutation(np.concatenate([fixed, rest]))


def _secondary_categories(primary: np.ndarray, num_categories: int, rng: Rng) -> np.ndarray:
  """Two distinct categories per item, both unlike the primary, uniform over the others."""
  first = rng.integers(0, num_categories - 1, size=primary.size)
  first += first >= primary
  low, high = np.minimum(primary, first), np.maximum(primary, first)
  second = rng.integers(0, num_categories - 2, size=primary.size)
  second += second >= low
  second += second >= high
  return np.stack([first, second], axis=1)


def _groups(group: np.ndarray, num_groups: int, tiebreak: np.ndarray,
            weight: np.ndarray) -> _Groups:
  """Sampling tables for items partitioned by `group` (empty groups allowed, never sampled)."""
  order = np.lexsort((tiebreak, group))
  counts = np.bincount(group, minlength=num_groups)
  offsets = np.concatenate([[0], np.cumsum(counts)])
  cumulative = np.concatenate([[0.0], np.cumsum(weight[order])])
  start = cumulative[offsets[:-1]]
  total = cumulative[offsets[1:]] - start
  member = group[order]
  keys = member + (cumulative[1:] - start[member]) / np.where(total > 0, total, 1.0)[member]
  filled = np.flatnonzero(counts)
  keys[offsets[filled + 1] - 1] = filled + 1.0  # Each group's CDF ends exactly at g + 1.
  return _Groups(order, offsets, keys)


def _build_catalog(config: GeneratorConfig, rng: Rng) -> tuple:
  """Draws categories and items; returns (sampling tables, items.parquet's table)."""
  num_items, num_categories, num_styles = config.num_items, config.num_categories, config.num_styles
  pi = _category_popularity(config, rng)
  primary = _primary_categories(config, pi, rng)
  shuffle = rng.random(num_items)
  order = np.lexsort((shuffle, primary))
  counts = np.bincount(primary, minlength=num_categories)
  offsets = np.concatenate([[0], np.cumsum(counts)])
  rank = np.empty(num_items, dtype=np.float64)
  rank[order] = np.arange(num_items) - np.repeat(offsets[:-1], counts)
  weight = (rng.lognormal(0.0, config.item_lognormal_sigma, num_items)
            if config.item_lognormal_sigma > 0 else _zipf(rank, config.item_zipf_exponent))
  popularity = weight / np.bincount(primary, weights=weight, minlength=num_categories)[primary]
  style = rng.integers(0, num_styles, size=num_items)
  cell = primary * num_styles + style
  style_mass = np.bincount(cell, weights=popularity, minlength=num_categories * num_styles)
  item_names = _names("i", 0, num_items, num_items, 7)
  catalog = _Catalog(
      pi=pi,
      pi_cdf=np.cumsum(pi),
      primary=primary,
      popularity=popularity,
      style=style,
      style_mass=style_mass.reshape(num_categories, num_styles),
      by_category=_groups(primary, num_categories, rank, popularity),
      by_category_style=_groups(cell, num_categories * num_styles, rank, popularity),
      category_names=_names("c", 0, num_categories, num_categories, 3),
      item_names=item_names,
      item_names_or_none=pa.concat_arrays([item_names, pa.array([NO_ITEM], _STRING)]),
  )
  return catalog, _items_table(config, catalog, rng)


def _sample_fresh(config: GeneratorConfig, catalog: _Catalog, category: np.ndarray,
                  style: np.ndarray, rng: Rng) -> np.ndarray:
  """Items of each category drawn ∝ pop_c(i) * (1 + beta [style_i == style]), as a mixture."""
  mass = config.taste_strength * catalog.style_mass[category, style]
  in_style = rng.random(category.size) < mass / (1.0 + mass)
  uniforms = rng.random(category.size)
  plain = catalog.by_category.sample(category, uniforms)
  styled = catalog.by_category_style.sample(category * config.num_styles + style, uniforms)
  return np.where(in_style, styled, plain)


def _items_table(config: GeneratorConfig, catalog: _Catalog, rng: Rng) -> pa.Table:
  """items.parquet: the primary and 0-2 secondary categories (some shuffled), with confidences."""
  num_items, width = catalog.primary.size, 1 + MAX_SECONDARY_CATEGORIES
  lengths = 1 + rng.integers(0, MAX_SECONDARY_CATEGORIES + 1, size=num_items)
  secondary = _secondary_categories(catalog.primary, catalog.pi.size, rng)
  categories = np.concatenate([catalog.primary[:, None], secondary], axis=1)
  confidences = np.concatenate([
      rng.uniform(*PRIMARY_CONFIDENCE, size=(num_items, 1)),
      rng.uniform(*SECONDARY_CONFIDENCE, size=(num_items, MAX_SECONDARY_CATEGORIES)),
  ], axis=1).astype(np.float32)
  unsorted = rng.random(num_items) < config.p_unsorted_categories
  slot = np.arange(width, dtype=np.float64)[None, :]
  keys = np.where(unsorted[:, None], rng.random((num_items, width)), slot)
  keys = np.where(slot < lengths[:, None], keys, np.inf)  # Absent slots stay last.
  listing = np.argsort(keys, axis=1, kind="stable")
  categories = np.take_along_axis(categories, listing, axis=1)
  confidences = np.take_along_axis(confidences, listing, axis=1)
  names = catalog.category_names.take(pa.array(_ragged(categories, lengths)))
  columns = [
      catalog.item_names,
      _list_array(names, lengths),
      _list_array(pa.array(_ragged(confidences, lengths), pa.float32()), lengths),
  ]
  return pa.Table.from_arrays(columns, schema=ITEMS_SCHEMA)


def _ground_truth_items_table(catalog: _Catalog) -> pa.Table:
  """ground_truth_items.parquet: what the oracles need about each item."""
  columns = [
      catalog.item_names,
      catalog.category_names.take(pa.array(catalog.primary)),
      pa.array(catalog.popularity, pa.float64()),
      pa.array(catalog.style, pa.int32()),
  ]
  return pa.Table.from_arrays(columns, schema=GROUND_TRUTH_ITEMS_SCHEMA)


# ---- Users, sessions, events. ----


def _group_preferences(config: GeneratorConfig, pi: np.ndarray, rng: Rng) -> np.ndarray:
  """(groups, C) category preference q_g per (country, age) group; g = country * A + age."""
  num_groups = len(config.countries) * len(config.age_buckets)
  gamma = rng.standard_gamma(config.group_dirichlet_alpha, size=(num_groups, pi.size))
  dirichlet = gamma / np.maximum(gamma.sum(axis=1, keepdims=True), np.finfo(np.float64).tiny)
  return (1.0 - config.group_pi_mix) * dirichlet + config.group_pi_mix * pi[None, :]


def _draw_interests(config: GeneratorConfig, preference: np.ndarray, rng: Rng) -> tuple:
  """Per user (row of `preference`): k_u core categories (Gumbel top-k) and their weights."""
  size, k_max = preference.shape[0], config.core_interests_max
  num_interests = rng.integers(config.core_interests_min, k_max + 1, size=size)
  with np.errstate(divide="ignore"):
    keys = np.log(preference)
  keys += rng.gumbel(size=keys.shape)
  top = np.argpartition(-keys, k_max - 1, axis=1)[:, :k_max]
  by_key = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
  interests = np.take_along_axis(top, by_key, axis=1)
  active = np.arange(k_max)[None, :] < num_interests[:, None]
  gamma = rng.standard_gamma(config.interest_weight_alpha, size=(size, k_max))
  gamma = np.where(active, np.maximum(gamma, 1e-300), 0.0)
  weights = gamma / gamma.sum(axis=1, keepdims=True)
  return num_interests, np.where(active, interests, -1), weights


def _draw_users(config: GeneratorConfig, preferences: np.ndarray, size: int, rng: Rng) -> _Users:
  """Demographics, long-term interests drawn from the group's preference, style, newness."""
  country = rng.choice(len(config.countries), size=size, p=_normalised(config.country_weights))
  age = rng.choice(len(config.age_buckets), size=size, p=_normalised(config.age_bucket_weights))
  group = country * len(config.age_buckets) + age
  num_interests, interests, weights = _draw_interests(config, preferences[group], rng)
  style = rng.integers(0, config.num_styles, size=size)
  is_new = rng.random(size) < config.new_user_share
  return _Users(country, age, num_interests, interests, weights, style, is_new)


def _draw_sessions(config: GeneratorConfig, users: _Users, catalog: _Catalog,
                   rng: Rng) -> _Sessions:
  """Session slots (distinct per user, in the user's window), start times and intents."""
  size, sigma = users.country.size, config.activity_sigma
  num_slots = config.num_days * SLOTS_PER_DAY
  new_slots = min(config.new_user_days, config.num_days) * SLOTS_PER_DAY
  window = np.where(users.is_new, new_slots, num_slots)
  activity = rng.lognormal(-0.5 * sigma * sigma, sigma, size=size)
  mean = config.sessions_per_user_mean * activity * (window / num_slots)
  counts = np.minimum(rng.poisson(mean), window)
  owner = np.repeat(np.arange(size, dtype=np.int64), counts)
  slot = num_slots - window[owner] + rng.integers(0, window[owner])
  keys = np.unique(owner * num_slots + slot)
  user, slot = keys // num_slots, keys % num_slots
  offset = rng.integers(0, SESSION_START_WINDOW_SECONDS, size=keys.size)
  start = config.start_timestamp + slot * SLOT_SECONDS + offset
  intent = _draw_intents(config, users, user, catalog.pi_cdf, rng)
  return _Sessions(user, start, intent, users.style[user])


def _draw_intents(config: GeneratorConfig, users: _Users, user: np.ndarray, pi_cdf: np.ndarray,
                  rng: Rng) -> np.ndarray:
  """Intent category per session: from theta_u with probability p_follow, else from pi."""
  size = user.size
  follow = rng.random(size) < config.p_follow
  cumulative = np.cumsum(users.weights[user], axis=1)
  pick = (rng.random(size)[:, None] >= cumulative).sum(axis=1)
  pick = np.minimum(pick, users.num_interests[user] - 1)
  from_interests = users.interests[user, pick]
  return np.where(follow, from_interests, _from_cdf(pi_cdf, rng.random(size)))


def _draw_events(config: GeneratorConfig, catalog: _Catalog, sessions: _Sessions,
                 rng: Rng) -> _Events:
  """Views and conversions of every session, laid out session by session in time order."""
  num_sessions = sessions.user.size
  converts = rng.random(num_sessions) < config.p_convert
  direct = converts & (rng.random(num_sessions) < config.p_convert_direct)
  num_views = np.where(direct, 0, 1 + rng.poisson(config.views_per_session_mean,
                                                  size=num_sessions))
  per_session = num_views + converts
  first = np.cumsum(per_session) - per_session
  session = np.repeat(np.arange(num_sessions), per_session)
  position = np.arange(session.size) - first[session]
  is_conversion = position == num_views[session]
  uniforms = rng.random(session.size)
  gap = np.where(is_conversion, _uniform_seconds(uniforms, CONVERSION_GAP_SECONDS),
                 _uniform_seconds(uniforms, VIEW_GAP_SECONDS))
  gap[position == 0] = 0
  elapsed = np.cumsum(gap)
  timestamp = sessions.start[session] + elapsed - elapsed[first][session]
  intent = sessions.intent[session]
  off_intent = rng.random(session.size) < config.p_offcategory_view
  category = np.where(off_intent, _from_cdf(catalog.pi_cdf, rng.random(session.size)), intent)
  item = catalog.by_category.sample(category, rng.random(session.size))
  conversions = np.flatnonzero(is_conversion)
  owner = session[conversions]
  views = num_views[owner]
  pick = np.minimum((rng.random(conversions.size) * views).astype(np.int64),
                    np.maximum(views - 1, 0))
  looked_at = item[first[owner] + pick]  # The conversion itself in a direct session (unused).
  chose_viewed = ((views > 0) & (rng.random(conversions.size) < config.p_convert_viewed)
                  & (catalog.primary[looked_at] == sessions.intent[owner]))
  fresh = _sample_fresh(config, catalog, sessions.intent[owner], sessions.style[owner], rng)
  item[conversions] = np.where(chose_viewed, looked_at, fresh)
  last_view = np.where(views > 0, item[conversions - 1], -1)
  return _Events(session, item, timestamp, is_conversion, conversions, last_view)


# ---- Tables. ----


def _chunk_tables(config: GeneratorConfig, catalog: _Catalog, preferences: np.ndarray,
                  start: int, stop: int, rng: Rng) -> _ChunkTables:
  """Generates users [start, stop), their events and their ground truth."""
  users = _draw_users(config, preferences, stop - start, rng)
  sessions = _draw_sessions(config, users, catalog, rng)
  events = _draw_events(config, catalog, sessions, rng)
  user_names = _names("u", start, stop, config.num_users, 7)
  event_types = pa.array([f.EVENT_VIEW, f.EVENT_CONVERSION], _STRING)
  events_table = pa.Table.from_arrays([
      user_names.take(pa.array(sessions.user[events.session])),
      catalog.item_names.take(pa.array(events.item)),
      event_types.take(pa.array(events.is_conversion.astype(np.int8))),
      pa.array(events.timestamp, pa.int64()),
  ], schema=EVENTS_SCHEMA)
  users_table = pa.Table.from_arrays([
      user_names,
      pa.array(config.countries, _STRING).take(pa.array(users.country)),
      pa.array(config.age_buckets, _STRING).take(pa.array(users.age)),
  ], schema=USERS_SCHEMA)
  truth = _ground_truth_table(catalog, users, sessions, events, user_names)
  return _ChunkTables(events_table, users_table, truth, sessions.user.size)


def _ground_truth_table(catalog: _Catalog, users: _Users, sessions: _Sessions, events: _Events,
                        user_names: pa.Array) -> pa.Table:
  """ground_truth.parquet rows: one per conversion, with its session's hidden state."""
  conversions = events.conversions
  session = events.session[conversions]
  owner = sessions.user[session]
  lengths = users.num_interests[owner]
  categories, items = catalog.category_names, catalog.item_names
  interests = categories.take(pa.array(_ragged(users.interests[owner], lengths)))
  weights = pa.array(_ragged(users.weights[owner], lengths), pa.float64())
  last_view = np.where(events.last_view >= 0, events.last_view, catalog.primary.size)
  return pa.Table.from_arrays([
      user_names.take(pa.array(owner)),
      items.take(pa.array(events.item[conversions])),
      pa.array(events.timestamp[conversions], pa.int64()),
      categories.take(pa.array(sessions.intent[session])),
      catalog.item_names_or_none.take(pa.array(last_view)),
      _list_array(interests, lengths),
      _list_array(weights, lengths),
      pa.array(users.style[owner], pa.int32()),
      pa.array(events.last_view < 0, pa.bool_()),  # direct: the session has no views
  ], schema=GROUND_TRUTH_SCHEMA)


def _ground_truth_metadata(config: GeneratorConfig, catalog: _Catalog, seed: int) -> dict:
  """The process parameters the oracles need, stored with the ground truth itself."""
  names = catalog.category_names.to_pylist()
  payload = {
      "p_follow": config.p_follow,
      "p_convert": config.p_convert,
      "p_convert_viewed": config.p_convert_viewed,
      "views_per_session_mean": config.views_per_session_mean,
      "p_offcategory_view": config.p_offcategory_view,
      "p_convert_direct": config.p_convert_direct,
      "num_styles": config.num_styles,
      "taste_strength": config.taste_strength,
      "category_popularity": {name: float(p) for name, p in zip(names, catalog.pi)},
      "seed": seed,
      "config": dataclasses.asdict(config),
  }
  return {METADATA_KEY: json.dumps(payload, sort_keys=True).encode("utf-8")}


# ---- Files. ----


def _writer(directory: str, stem: str, schema: pa.Schema) -> pq.ParquetWriter:
  """A Parquet writer with fixed options, so the bytes depend on the data only."""
  return pq.ParquetWriter(os.path.join(directory, f"{stem}.parquet"), schema, **PARQUET_OPTIONS)


def _generate_into(config: GeneratorConfig, seed: int, directory: str,
                   progress: Optional[Callable[[str], None]]) -> dict:
  """Writes the catalog, then each user chunk as row groups; returns the row counts."""
  chunk_starts = range(0, config.num_users, config.user_chunk_size)
  catalog_seed, group_seed, *chunk_seeds = np.random.SeedSequence(seed).spawn(
      2 + len(chunk_starts))
  catalog, items = _build_catalog(config, np.random.default_rng(catalog_seed))
  with _writer(directory, f.ITEMS, ITEMS_SCHEMA) as writer:
    writer.write_table(items)
  with _writer(directory, f.GROUND_TRUTH_ITEMS, GROUND_TRUTH_ITEMS_SCHEMA) as writer:
    writer.write_table(_ground_truth_items_table(catalog))
  preferences = _group_preferences(config, catalog.pi, np.random.default_rng(group_seed))
  truth_schema = GROUND_TRUTH_SCHEMA.with_metadata(_ground_truth_metadata(config, catalog, seed))
  counts = dict(users=config.num_users, items=config.num_items, sessions=0, events=0, views=0,
                conversions=0)
  with ExitStack() as stack:
    events_w = stack.enter_context(_writer(directory, f.EVENTS, EVENTS_SCHEMA))
    users_w = stack.enter_context(_writer(directory, f.USERS, USERS_SCHEMA))
    truth_w = stack.enter_context(_writer(directory, f.GROUND_TRUTH, truth_schema))
    for start, chunk_seed in zip(chunk_starts, chunk_seeds):
      stop = min(start + config.user_chunk_size, config.num_users)
      chunk = _chunk_tables(config, catalog, preferences, start, stop,
                            np.random.default_rng(chunk_seed))
      events_w.write_table(chunk.events)
      users_w.write_table(chunk.users)
      truth_w.write_table(chunk.ground_truth)
      counts["sessions"] += chunk.sessions
      counts["events"] += chunk.events.num_rows
      counts["conversions"] += chunk.ground_truth.num_rows
      if progress is not None:
        progress(f"generate: users {stop}/{config.num_users}, events {counts['events']}")
  counts["views"] = counts["events"] - counts["conversions"]
  return counts


def _chmod_like_makedirs(directory: str) -> None:
  """mkdtemp makes 0700 folders; the published folder gets the usual umask-based mode."""
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(directory, 0o777 & ~umask)


def _publish(staging: str, out_dir: str) -> None:
  """Moves finished files into out_dir: the whole folder if new, else file by file."""
  if not os.path.exists(out_dir):
    os.rename(staging, out_dir)
    return
  for name in OUTPUT_FILES:
    os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
  os.rmdir(staging)


def generate(config: GeneratorConfig, seed: int, out_dir: str,
             progress: Optional[Callable[[str], None]] = None) -> GenerationSummary:
  """Writes the five tables for (config, seed) into out_dir, deterministically and atomically."""
  began = time.perf_counter()
  out_dir = os.path.abspath(out_dir)
  parent = os.path.dirname(out_dir)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.tmp-", dir=parent)
  try:
    _chmod_like_makedirs(staging)
    counts = _generate_into(config, seed, staging, progress)
    _publish(staging, out_dir)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return GenerationSummary(**counts, elapsed_seconds=time.perf_counter() - began)
