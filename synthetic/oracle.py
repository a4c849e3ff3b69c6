"""Oracles that rank by the true conversion probability: ceilings a learned retriever is held to.

Each oracle ranks the whole catalog for one conversion by the probability, under the generative
process of `ctxrec.synthetic.generator`, that the item is the one converted, given what the
oracle knows. Notation: c the session's intent, u the user (style s_u, interests theta_u); the
oracle sees V views of the session, v_1 (the last one) ... v_V, k_j = cat(v_j) their primary
categories and N_c the number of them in c; n = 1 + Poisson(lambda) the number of views of a
non-direct session (n >= V); p_v = p_convert_viewed, p_off = p_offcategory_view, d =
p_convert_direct, beta = taste_strength; [.] is 1 when true, else 0.

What the context oracles see of the session. From the ground truth alone, its last view v_1
(last_view_item_id), V = 1, not n. Given the eval examples' logged sessions (`with_sessions`,
`oracle_top_k(sessions=...)`), every view the example logged: the whole session when it has
fewer views than the examples keep (n = V), else its last V views (n >= V). r = E[1/n | what is
seen] is then 1/V for a whole session and, for the last V views only,
E[1/n | n >= V] = P(X >= V) / (lambda P(X >= V - 1)), X ~ Poisson(lambda)
((1 - exp(-lambda)) / lambda for V = 1); h = E[(n - V)/n] = 1 - V r is the chance the
conversion looks at a view the oracle does not see.

A view of a session with intent c is in c with probability q_c = 1 - p_off * (1 - pi(c)) (on
intent, or off intent and drawn into c by chance), and given that it is in c its item is
distributed ∝ pop_c. The fresh draw is f_cu(i) = [cat(i) = c] pop_c(i) (1 + beta [style_i = s_u])
/ (1 + beta M(c, s_u)), M(c, s) the summed pop_c of c's items of style s.

oracle_contextual (knows c, s_u and the views). With probability p_v the conversion looks at a
uniform view position: a seen view v_j (probability r each) converts on v_j if k_j = c; an unseen
one (probability h) holds an independent view, in c with probability q_c and then ∝ pop_c.
Whatever is not converted that way is a fresh draw:

    P(i | c, v, u) = p_v r sum_j [i = v_j] [k_j = c] + p_v h q_c pop_c(i) [cat(i) = c]
                     + F(c) f_cu(i),
    F(c) = 1 - p_v r N_c - p_v h q_c.

oracle_context_item (knows theta_u, s_u and the views, not c): the intent's posterior given
every seen view, each drawn independently given c,

    P(c | u, v) ∝ w_u(c) prod_j ((1 - p_off) [k_j = c] + p_off pi(k_j)),
    w_u = p_follow theta_u + (1 - p_follow) pi,

(v_j's likelihood under intent c, pop(v_j) cancelling; more views sharpen it), and P(i | u, v) =
sum_c P(c | u, v) P(i | c, v, u). The ceiling of a model in context mode `item`.

oracle_context_categories (knows theta_u, s_u and the views' primary categories k_j only): the
same posterior, and P(i | c, k, u) is P(i | c, v, u) averaged over the views given their
categories, which replaces the v term by p_v r N_c pop_c(i) [cat(i) = c] (a view in c is
∝ pop_c). The ceiling of context mode `categories`, up to the views' secondary categories:
random under the process, they say nothing of the intent but narrow down which items were
viewed, which this oracle does not use.

oracle_history (knows theta_u and s_u only, not even whether the session had views): with
A_c = (1 - d) p_v q_c the chance the conversion is a looked-at view in c,

    P(i | u) = sum_c w_u(c) [A_c pop_c(i) [cat(i) = c] + (1 - A_c) f_cu(i)].

A direct session (no views, last_view_item_id "") converts on the fresh draw: oracle_contextual
gives f_cu(i), and the two context oracles, which know only that there is no context, give
P(i | u, direct) = sum_c w_u(c) f_cu(i); a view an example logged for it belongs to an earlier
session and is ignored, as is, in any session, a logged view more than the generator's longest
gap between views (VIEW_GAP_SECONDS) before the next one (then the session seen is whole).

Every probability above is pop(i) times a coefficient of (cat(i), style_i) per conversion,
plus the terms of the seen views. So only the k most popular items of each (category, style)
cell, the seen views and the first 2k catalog items can make a top k (see `_candidates`); those
are scored densely, in blocks of rows holding about 2^25 scores. Ties go to the earlier item in
ground_truth_items order. `conversion_probabilities` returns the full probability vectors (each
sums to 1).
"""
import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ctxrec.synthetic.generator import (GT_DIRECT, GT_STYLE, GT_USER_STYLE, METADATA_KEY,
                                        NO_ITEM, VIEW_GAP_SECONDS)
from ctxrec.transform import features as f

ORACLE_CONTEXTUAL = "oracle_contextual"
ORACLE_CONTEXT_ITEM = "oracle_context_item"
ORACLE_CONTEXT_CATEGORIES = "oracle_context_categories"
ORACLE_HISTORY = "oracle_history"
ORACLES = (ORACLE_CONTEXTUAL, ORACLE_CONTEXT_ITEM, ORACLE_CONTEXT_CATEGORIES, ORACLE_HISTORY)
CONVERSION_KEYS = [f.USER_ID, f.ITEM_ID, f.TIMESTAMP]
BLOCK_SCORES = 2**25  # Scores held at once: rows per block = BLOCK_SCORES // catalog size.
_ROW = "_ground_truth_row"
Session = Sequence[Tuple[str, int]]  # a logged session: (item id, seconds ago), most recent first


@dataclass(frozen=True)
class GroundTruth:
  """What the oracles need: the true catalog, process parameters and each conversion's state."""

  item_ids: np.ndarray  # (N,) item id strings in catalog order.
  item_index: pd.Index  # Item id -> catalog position.
  primary: np.ndarray  # (N,) primary category index.
  popularity: np.ndarray  # (N,) pop_c(i) within the primary category.
  style: np.ndarray  # (N,) latent item style.
  category_ids: np.ndarray  # (C,) category id strings, sorted.
  category_popularity: np.ndarray  # (C,) pi.
  style_mass: np.ndarray  # (C, S) M(c, s) = sum of pop_c over c's items of style s.
  p_follow: float
  p_convert_viewed: float
  views_per_session_mean: float
  p_offcategory_view: float
  p_convert_direct: float
  taste_strength: float
  keys: pd.DataFrame  # (M rows) user_id, item_id, timestamp of each ground-truth conversion.
  intent: np.ndarray  # (M,) intent category index.
  last_view: np.ndarray  # (M,) the session's last viewed item index, -1 in a direct session.
  user_style: np.ndarray  # (M,) the user's style.
  interest_categories: np.ndarray  # (M, k) category index, -1 past the user's interests.
  interest_weights: np.ndarray  # (M, k) theta_u, 0 past the user's interests.
  # (M, V) the session views the context oracles see, most recent first, -1 past them: the last
  # view alone, unless with_sessions gave the logged sessions.
  session: np.ndarray
  whole_session: np.ndarray  # (M,) bool: `session` is every view (n = V), else its last V.

  @property
  def num_styles(self) -> int:
    return self.style_mass.shape[1]

  @property
  def direct(self) -> np.ndarray:
    """(M,) bool: the conversion's session had no views (no context)."""
    return self.last_view < 0


def load_ground_truth(data_dir: str) -> GroundTruth:
  """Reads the ground_truth tables that `ctxrec.synthetic.generator.generate` wrote."""
  items = pq.read_table(f"{data_dir}/{f.GROUND_TRUTH_ITEMS}.parquet")
  path = f"{data_dir}/{f.GROUND_TRUTH}.parquet"
  conversions = pq.read_table(path)
  metadata = conversions.schema.metadata or {}
  if METADATA_KEY not in metadata:
    raise ValueError(f"{path} has no {METADATA_KEY!r} schema metadata")
  return _from_arrow(items, conversions, json.loads(metadata[METADATA_KEY]))


def make_ground_truth(items: pd.DataFrame, conversions: pd.DataFrame,
                      params: Mapping[str, object]) -> GroundTruth:
  """A GroundTruth from in-memory tables (the parquet files' columns and metadata keys).

  Absent style columns mean style 0; absent parameters p_offcategory_view, p_convert_direct and
  taste_strength mean 0 (the process without off-intent views, direct sessions or taste).
  """
  return _from_arrow(pa.Table.from_pandas(items, preserve_index=False),
                     pa.Table.from_pandas(conversions, preserve_index=False), params)


def _from_arrow(items: pa.Table, conversions: pa.Table, params: Mapping) -> GroundTruth:
  """Indexes the tables: positions, style masses, padded interests."""
  pi_by_id = dict(params["category_popularity"])
  category_ids = np.array(sorted(pi_by_id), dtype=object)
  categories = pd.Index(category_ids)
  item_ids = np.asarray(items.column(f.ITEM_ID).to_pylist(), dtype=object)
  item_index = pd.Index(item_ids)
  primary = _positions(categories, items.column(f.GT_PRIMARY_CATEGORY), "primary category")
  popularity = items.column(f.GT_POPULARITY).to_numpy().astype(np.float64)
  style = _int_column(items, GT_STYLE)
  user_style = _int_column(conversions, GT_USER_STYLE)
  num_styles = int(params.get("num_styles", 1 + max(style.max(initial=0),
                                                    user_style.max(initial=0))))
  if style.size and not 0 <= style.min() <= style.max() < num_styles:
    raise ValueError(f"item styles must lie in [0, {num_styles})")
  if user_style.size and not 0 <= user_style.min() <= user_style.max() < num_styles:
    raise ValueError(f"user styles must lie in [0, {num_styles})")
  style_mass = np.bincount(primary * num_styles + style, weights=popularity,
                           minlength=category_ids.size * num_styles)
  names, present = _padded_list(conversions.column(f.GT_INTEREST_CATEGORIES))
  weights, _ = _padded_list(conversions.column(f.GT_INTEREST_WEIGHTS))
  interests = np.full(names.shape, -1, dtype=np.int64)
  interests[present] = _positions(categories, names[present], "interest category")
  last_view = _positions(item_index, conversions.column(f.GT_LAST_VIEW_ITEM_ID), "last view",
                         missing=NO_ITEM)
  if GT_DIRECT in conversions.column_names:
    direct = conversions.column(GT_DIRECT).to_numpy().astype(bool)
    if (direct != (last_view < 0)).any():
      raise ValueError(f"{GT_DIRECT} disagrees with an empty {f.GT_LAST_VIEW_ITEM_ID}")
  return GroundTruth(
      item_ids=item_ids,
      item_index=item_index,
      primary=primary,
      popularity=popularity,
      style=style,
      category_ids=category_ids,
      category_popularity=np.array([pi_by_id[c] for c in category_ids], dtype=np.float64),
      style_mass=style_mass.reshape(category_ids.size, num_styles),
      p_follow=float(params["p_follow"]),
      p_convert_viewed=float(params["p_convert_viewed"]),
      views_per_session_mean=float(params["views_per_session_mean"]),
      p_offcategory_view=float(params.get("p_offcategory_view", 0.0)),
      p_convert_direct=float(params.get("p_convert_direct", 0.0)),
      taste_strength=float(params.get("taste_strength", 0.0)),
      keys=conversions.select(CONVERSION_KEYS).to_pandas(),
      intent=_positions(categories, conversions.column(f.GT_INTENT_CATEGORY), "intent category"),
      last_view=last_view,
      user_style=user_style,
      interest_categories=interests,
      interest_weights=np.where(present, weights, 0.0).astype(np.float64),
      session=last_view[:, None],
      whole_session=np.zeros(last_view.size, dtype=bool),
  )


def with_sessions(truth: GroundTruth, rows: np.ndarray, sessions: Sequence[Session],
                  views_kept: Optional[int] = None) -> GroundTruth:
  """The ground truth with the logged sessions of `rows` (one per row) as what the context
  oracles see (module docstring): a session shorter than `views_kept`, the views an example
  keeps, is whole (never, when None); a direct row's logged views, and any view after a gap
  longer than the generator's, belong to an earlier session and are dropped."""
  rows = np.asarray(rows, dtype=np.int64).reshape(-1)
  if rows.size != len(sessions):
    raise ValueError(f"need one session per row ({rows.size}), got {len(sessions)}")
  seen = [([], True) if truth.direct[row] else _this_session(views)
          for row, views in zip(rows, sessions)]
  lengths = np.array([len(ids) for ids, _ in seen], dtype=np.int64)
  flat = np.array([item for ids, _ in seen for item in ids], dtype=object)
  width = max(truth.session.shape[1], int(lengths.max(initial=0)))
  session = np.full((truth.last_view.size, width), -1, dtype=np.int64)
  session[:, :truth.session.shape[1]] = truth.session
  filled = np.arange(width)[None, :] < lengths[:, None]
  views = np.full((rows.size, width), -1, dtype=np.int64)
  views[filled] = _positions(truth.item_index, flat, "session view")
  session[rows] = views
  cut = np.array([was_cut for _, was_cut in seen], dtype=bool)
  kept_all = np.zeros(rows.size, bool) if views_kept is None else lengths < views_kept
  last_seen = (lengths == 0) | (views[:, 0] == truth.last_view[rows])  # else more views exist
  whole = truth.whole_session.copy()
  whole[rows] = (cut | kept_all) & last_seen
  return dataclasses.replace(truth, session=session, whole_session=whole)


def _this_session(views: Session) -> Tuple[list, bool]:
  """(item ids of the conversion's own session, whether a view of an earlier one was cut)."""
  ids = [str(item_id) for item_id, _ in views]
  ages = [int(age) for _, age in views]
  for j in range(1, len(ids)):
    if ages[j] - ages[j - 1] > VIEW_GAP_SECONDS[1]:
      return ids[:j], True
  return ids, False


def _int_column(table: pa.Table, name: str) -> np.ndarray:
  """An integer column as int64, zeros when the table lacks it."""
  if name not in table.column_names:
    return np.zeros(table.num_rows, dtype=np.int64)
  return table.column(name).to_numpy().astype(np.int64)


def _positions(index: pd.Index, values, what: str, missing: Optional[str] = None) -> np.ndarray:
  """Positions of values in index (-1 for `missing`); an unknown value is an error."""
  if isinstance(values, pa.ChunkedArray):
    values = values.combine_chunks()
  if isinstance(values, pa.Array):
    values = values.to_numpy(zero_copy_only=False)
  positions = index.get_indexer(values)
  unknown = positions < 0
  if missing is not None:
    unknown &= np.asarray(values, dtype=object) != missing
  if unknown.any():
    raise ValueError(f"unknown {what}: {values[np.flatnonzero(unknown)[0]]!r}")
  return positions.astype(np.int64)


def _padded_list(column: pa.ChunkedArray) -> tuple:
  """A list column as a (rows, longest) matrix, plus the mask of real entries."""
  lists = column.combine_chunks()
  lengths = np.diff(lists.offsets.to_numpy())
  values = lists.flatten().to_numpy(zero_copy_only=False)
  width = int(lengths.max()) if lengths.size else 0
  present = np.arange(width)[None, :] < lengths[:, None]
  matrix = np.zeros((lengths.size, width), dtype=values.dtype)
  matrix[present] = values
  return matrix, present


def expected_inverse_views(views_mean: float, at_least: int = 1) -> float:
  """E[1/n | n >= at_least] for n = 1 + Poisson(mean): the chance the converted viewed item is
  a given one of the session's last `at_least` views, when the views before them are unseen."""
  if views_mean <= 0:
    return 1.0 / max(at_least, 1)  # n = 1; a longer session is impossible
  if at_least <= 1:
    return float(-np.expm1(-views_mean) / views_mean)
  return _poisson_tail(views_mean, at_least) / (views_mean
                                                * _poisson_tail(views_mean, at_least - 1))


def _poisson_tail(mean: float, at_least: int) -> float:
  """P(X >= at_least) for X ~ Poisson(mean) > 0, summed over the tail (no cancellation)."""
  terms = np.arange(at_least, at_least + 60 + int(10 * mean))
  logs = terms * math.log(mean) - mean - np.array([math.lgamma(x + 1.0) for x in terms])
  return float(np.exp(logs).sum())


def _inverse_views(truth: GroundTruth, rows: np.ndarray) -> np.ndarray:
  """(B,) r = E[1/n | the views seen]: 1 / V for a whole session, else E[1/n | n >= V]."""
  seen = (truth.session[rows] >= 0).sum(axis=1)
  out = np.empty(rows.size)
  for count in np.unique(seen):
    at = seen == count
    out[at] = expected_inverse_views(truth.views_per_session_mean, int(count))
    out[at & truth.whole_session[rows]] = 1.0 / max(int(count), 1)
  return out


# ---- Scores: pop(i) * coefficient(row, cat(i), [style_i = s_u]) + bonuses on the views. ----


@dataclass(frozen=True)
class _Terms:
  """One block of rows: P(i) = sum_c post[c] (a[c] pop_c(i) + b[c] f_cu(i))
  + sum_j bonus[j] [i = v_j]."""

  post: np.ndarray  # (B, C) weight of intent c.
  a: np.ndarray  # (B, C) mass converted ∝ pop_c given c.
  b: np.ndarray  # (B, C) mass converted by the fresh, taste-weighted draw given c.
  bonus: np.ndarray  # (B, V) probability of converting on seen view j itself.


def _long_term(truth: GroundTruth, rows: np.ndarray) -> np.ndarray:
  """(B, C) w_u = p_follow * theta_u + (1 - p_follow) * pi."""
  interests, weights = truth.interest_categories[rows], truth.interest_weights[rows]
  theta = np.zeros((rows.size, truth.category_ids.size))
  np.add.at(theta, (np.repeat(np.arange(rows.size), interests.shape[1]), interests.ravel()),
            np.where(interests >= 0, weights, 0.0).ravel())
  return truth.p_follow * theta + (1.0 - truth.p_follow) * truth.category_popularity[None, :]


def _view_in_intent(truth: GroundTruth) -> np.ndarray:
  """(C,) q_c: the chance a view of a session with intent c is in c."""
  return 1.0 - truth.p_offcategory_view * (1.0 - truth.category_popularity)


def _seen_categories(truth: GroundTruth, rows: np.ndarray) -> np.ndarray:
  """(B, V) primary category of each seen view, -1 past them."""
  views = truth.session[rows]
  return np.where(views >= 0, truth.primary[np.maximum(views, 0)], -1)


def _in_category(categories: np.ndarray, num_categories: int) -> np.ndarray:
  """(B, V, C) [k_j = c]; all False past the seen views."""
  return np.arange(num_categories)[None, None, :] == categories[:, :, None]


def _session_terms(truth: GroundTruth, rows: np.ndarray, post: np.ndarray,
                   item_context: bool) -> _Terms:
  """P(i | c, v, u) (item_context) or P(i | c, k, u) weighted by post; fresh if direct."""
  p_viewed, direct = truth.p_convert_viewed, truth.direct[rows][:, None]
  categories = _seen_categories(truth, rows)
  same = _in_category(categories, truth.category_ids.size)  # (B, V, C)
  inverse = _inverse_views(truth, rows)[:, None]  # r
  unseen = 1.0 - (categories >= 0).sum(axis=1, keepdims=True) * inverse  # h
  earlier = np.where(direct, 0.0, p_viewed * unseen * _view_in_intent(truth)[None, :])
  seen = p_viewed * inverse * same.sum(axis=1)  # p_v r N_c
  fresh = np.where(direct, 1.0, 1.0 - seen - earlier)
  if item_context:
    bonus = p_viewed * inverse * (same * post[:, None, :]).sum(axis=2)  # (B, V)
    return _Terms(post, earlier, fresh, bonus)
  return _Terms(post, earlier + seen, fresh, np.zeros(categories.shape))


def _intent_posterior(truth: GroundTruth, rows: np.ndarray) -> np.ndarray:
  """(B, C) P(c | u, v) ∝ w_u(c) prod_j ((1 - p_off) [k_j = c] + p_off pi(k_j)); w_u if no view
  is seen."""
  categories = _seen_categories(truth, rows)
  same = _in_category(categories, truth.category_ids.size)
  p_off = truth.p_offcategory_view
  likelihood = (1.0 - p_off) * same + p_off * truth.category_popularity[
      np.maximum(categories, 0)][:, :, None]
  likelihood[categories < 0] = 1.0
  posterior = _long_term(truth, rows) * likelihood.prod(axis=1)
  total = posterior.sum(axis=1, keepdims=True)
  if (total <= 0).any():
    row = rows[int(np.flatnonzero(total <= 0)[0])]
    raise ValueError(f"ground-truth row {row}: its session's views are impossible under the "
                     f"process (p_offcategory_view {p_off}: views in several categories)")
  return posterior / total


def _contextual(truth: GroundTruth, rows: np.ndarray) -> _Terms:
  post = np.zeros((rows.size, truth.category_ids.size))
  post[np.arange(rows.size), truth.intent[rows]] = 1.0
  return _session_terms(truth, rows, post, item_context=True)


def _context_item(truth: GroundTruth, rows: np.ndarray) -> _Terms:
  return _session_terms(truth, rows, _intent_posterior(truth, rows), item_context=True)


def _context_categories(truth: GroundTruth, rows: np.ndarray) -> _Terms:
  return _session_terms(truth, rows, _intent_posterior(truth, rows), item_context=False)


def _history(truth: GroundTruth, rows: np.ndarray) -> _Terms:
  looked_at = ((1.0 - truth.p_convert_direct) * truth.p_convert_viewed
               * _view_in_intent(truth))[None, :].repeat(rows.size, axis=0)
  return _Terms(_long_term(truth, rows), looked_at, 1.0 - looked_at, np.zeros((rows.size, 0)))


_TERMS: Dict[str, Callable[[GroundTruth, np.ndarray], _Terms]] = {
    ORACLE_CONTEXTUAL: _contextual,
    ORACLE_CONTEXT_ITEM: _context_item,
    ORACLE_CONTEXT_CATEGORIES: _context_categories,
    ORACLE_HISTORY: _history,
}


def _scores(truth: GroundTruth, rows: np.ndarray, terms: _Terms,
            columns: Optional[np.ndarray] = None) -> np.ndarray:
  """(B, len(columns)) conversion probabilities of the given (sorted) items, default all."""
  num_styles, beta = truth.num_styles, truth.taste_strength
  if columns is None:
    columns = np.arange(truth.item_ids.size)
  user_style = truth.user_style[rows]
  normaliser = 1.0 + beta * truth.style_mass[:, user_style].T  # (B, C): 1 + beta M(c, s_u).
  plain = terms.post * terms.a
  taste = terms.post * terms.b / normaliser
  matches = np.arange(num_styles)[None, None, :] == user_style[:, None, None]
  table = plain[:, :, None] + taste[:, :, None] * (1.0 + beta * matches)  # (B, C, S)
  cell = truth.primary[columns] * num_styles + truth.style[columns]
  scores = np.take(table.reshape(rows.size, -1), cell, axis=1)
  scores *= truth.popularity[columns][None, :]
  views = truth.session[rows]
  for slot in range(terms.bonus.shape[1]):  # a view seen twice gets both bonuses
    seen = np.flatnonzero(views[:, slot] >= 0)
    scores[seen, np.searchsorted(columns, views[seen, slot])] += terms.bonus[seen, slot]
  return scores


def conversion_probabilities(truth: GroundTruth, rows: np.ndarray,
                             names: Sequence[str] = ORACLES) -> Dict[str, np.ndarray]:
  """Each named oracle's (len(rows), N) probability of each catalog item for ground-truth rows."""
  rows = np.asarray(rows, dtype=np.int64)
  return {name: _scores(truth, rows, _TERMS[name](truth, rows)) for name in names}


# ---- Ranking. ----


def rows_per_block(num_items: int) -> int:
  """Rows scored at once so that a block of num_items columns holds about BLOCK_SCORES scores."""
  return max(1, BLOCK_SCORES // max(num_items, 1))


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
  """Per row, the k highest-scoring columns, ties to the lower column index."""
  num_rows, size = scores.shape
  if k < size:
    kth = np.partition(scores, size - k, axis=1)[:, size - k]  # The k-th largest score.
  else:
    kth = scores.min(axis=1)
  keep = scores >= kth[:, None]
  for row in np.flatnonzero(keep.sum(axis=1) > k):  # Of the tied columns, keep the first few.
    tied = np.flatnonzero(scores[row] == kth[row])
    keep[row, tied[k - (int(keep[row].sum()) - tied.size):]] = False
  row, col = np.nonzero(keep)  # Exactly k per row, row-major.
  order = np.lexsort((col, -scores[row, col], row))
  return col[order].reshape(num_rows, k)


def _match(truth: GroundTruth, conversions: pd.DataFrame) -> np.ndarray:
  """The ground-truth row of each conversion (same user, item, timestamp), in input order."""
  missing = [c for c in CONVERSION_KEYS if c not in conversions.columns]
  if missing:
    raise ValueError(f"conversions lack the columns {missing}")
  keys = conversions[CONVERSION_KEYS].astype({f.TIMESTAMP: "int64"}).reset_index(drop=True)
  rows = truth.keys.astype({f.TIMESTAMP: "int64"}).assign(**{_ROW: np.arange(len(truth.keys))})
  merged = keys.merge(rows.drop_duplicates(CONVERSION_KEYS), on=CONVERSION_KEYS, how="left")
  unmatched = merged[_ROW].isna().to_numpy()
  if unmatched.any():
    first = keys.iloc[int(np.flatnonzero(unmatched)[0])].to_dict()
    raise ValueError(f"{int(unmatched.sum())} of {len(keys)} conversions are not in the ground "
                     f"truth; first unmatched: {first}")
  return merged[_ROW].to_numpy().astype(np.int64)


def _candidates(truth: GroundTruth, k: int) -> np.ndarray:
  """Sorted catalog positions that hold every oracle's top k, but for the seen views.

  All items of a (primary category, style) cell share the coefficient of pop(i), so an item
  outside its cell's k most popular (ties: earlier) ranks below k others of its cell. The
  exceptions, the seen views, are added per block; zero scores, ranked by catalog order, matter
  only when fewer than k items score above zero, and then the first 2k items hold the earliest
  of them.
  """
  size = truth.item_ids.size
  cell = truth.primary * truth.num_styles + truth.style
  order = np.lexsort((np.arange(size), -truth.popularity, cell))
  starts = np.searchsorted(cell[order], cell[order], side="left")
  head = order[np.arange(size) - starts < k]
  return np.union1d(head, np.arange(min(2 * k, size)))


def _top_k_indices(truth: GroundTruth, rows: np.ndarray, k: int) -> Dict[str, np.ndarray]:
  """Every oracle's top-k catalog positions for the given ground-truth rows, in blocks."""
  size = truth.item_ids.size
  if not 1 <= k <= size:
    raise ValueError(f"k must be in [1, {size}], got {k}")
  out = {name: np.empty((rows.size, k), dtype=np.int64) for name in ORACLES}
  candidates = _candidates(truth, k)
  step = rows_per_block(candidates.size)
  for start in range(0, rows.size, step):
    block = rows[start:start + step]
    views = truth.session[block]
    columns = np.union1d(candidates, views[views >= 0])
    for name, terms in _TERMS.items():
      scores = _scores(truth, block, terms(truth, block), columns)
      out[name][start:start + block.size] = columns[_top_k(scores, k)]
  return out


def oracle_top_k(truth: GroundTruth, conversions: pd.DataFrame, k: int,
                 sessions: Optional[Sequence[Session]] = None,
                 views_kept: Optional[int] = None) -> Dict[str, np.ndarray]:
  """Each oracle's ranked top-k item ids, shape (len(conversions), k), for any ranking metric;
  with `sessions` (one per conversion) the context oracles see them (with_sessions)."""
  rows = _match(truth, conversions)
  if sessions is not None:
    truth = with_sessions(truth, rows, sessions, views_kept)
  ranked = _top_k_indices(truth, rows, k)
  return {name: truth.item_ids[positions] for name, positions in ranked.items()}


def oracle_recall(truth: GroundTruth, conversions: pd.DataFrame, ks: Sequence[int],
                  sessions: Optional[Sequence[Session]] = None,
                  views_kept: Optional[int] = None) -> Dict[str, Dict[int, float]]:
  """Recall@K (the converted item is in the oracle's top K) per oracle and K; `sessions` as for
  oracle_top_k."""
  ks = sorted({int(k) for k in ks})
  rows = _match(truth, conversions)
  if sessions is not None:
    truth = with_sessions(truth, rows, sessions, views_kept)
  if rows.size == 0:
    return {name: {k: float("nan") for k in ks} for name in ORACLES}
  labels = truth.item_index.get_indexer(conversions[f.ITEM_ID].to_numpy())[:, None]
  ranked = _top_k_indices(truth, rows, ks[-1])
  return {name: {k: float((positions[:, :k] == labels).any(axis=1).mean()) for k in ks}
          for name, positions in ranked.items()}
