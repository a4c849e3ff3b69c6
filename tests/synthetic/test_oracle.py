"""The oracles give the process's true conversion probabilities, rank by them, and fail loudly.

Three independent checks: the module docstring's formulas written out item by item; a Monte
Carlo simulation with the generator's own sampling code, compared to the oracles' probabilities;
and the dense top-k against a full sort.
"""
import json
import math

import numpy as np
import pandas as pd
import pytest

from ctxrec.synthetic import generator, oracle
from ctxrec.synthetic.profiles import PROFILES, GeneratorConfig
from ctxrec.transform import features as f

DAY = 86400
KS = (10, 50, 100)
KEYS = [f.USER_ID, f.ITEM_ID, f.TIMESTAMP]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("oracle") / "tiny")
  generator.generate(PROFILES["tiny"], 4, out)
  conversions = pd.read_parquet(f"{out}/{f.GROUND_TRUTH}.parquet")
  return oracle.load_ground_truth(out), conversions


def _last_week(conversions: pd.DataFrame) -> pd.DataFrame:
  return conversions[conversions[f.TIMESTAMP] >= conversions[f.TIMESTAMP].max() - 7 * DAY]


# ---- The docstring's formulas, written out item by item. ----


def _formula(truth: oracle.GroundTruth, row: int, name: str) -> np.ndarray:
  """One conversion's probability vector under `name`, straight from the module docstring."""
  lam = truth.views_per_session_mean
  inverse = sum(math.exp(-lam) * lam**x / math.factorial(x) / (x + 1) for x in range(60))
  p_v, p_off, d, beta = (truth.p_convert_viewed, truth.p_offcategory_view,
                         truth.p_convert_direct, truth.taste_strength)
  pi, cat, pop, style = (truth.category_popularity, truth.primary, truth.popularity, truth.style)
  num_items, num_categories = cat.size, pi.size
  s, v = truth.user_style[row], truth.last_view[row]
  q = [1 - p_off * (1 - pi[c]) for c in range(num_categories)]
  mass = {c: sum(pop[j] for j in range(num_items) if cat[j] == c and style[j] == s)
          for c in range(num_categories)}

  def fresh(c, i):
    return pop[i] * (1 + beta * (style[i] == s)) / (1 + beta * mass[c]) if cat[i] == c else 0.0

  def session(c, i, item_context):
    if v < 0:
      return fresh(c, i)
    k = cat[v]
    remaining = (1 - p_v) + p_v * inverse * (k != c) + p_v * (1 - inverse) * (1 - q[c])
    p = p_v * (1 - inverse) * q[c] * pop[i] * (cat[i] == c) + remaining * fresh(c, i)
    if item_context:
      return p + p_v * inverse * (i == v) * (k == c)
    return p + p_v * inverse * (k == c) * pop[i] * (cat[i] == c)

  theta = np.zeros(num_categories)
  for c, weight in zip(truth.interest_categories[row], truth.interest_weights[row]):
    if c >= 0:
      theta[c] = weight
  w = truth.p_follow * theta + (1 - truth.p_follow) * pi
  if name == oracle.ORACLE_CONTEXTUAL:
    return np.array([session(truth.intent[row], i, True) for i in range(num_items)])
  if name == oracle.ORACLE_HISTORY:
    looked = [(1 - d) * p_v * q[c] for c in range(num_categories)]
    return np.array([sum(w[c] * (looked[c] * pop[i] * (cat[i] == c) + (1 - looked[c])
                                 * fresh(c, i)) for c in range(num_categories))
                     for i in range(num_items)])
  if v < 0:
    post = w / w.sum()
  else:
    k = cat[v]
    post = np.array([w[c] * ((1 - p_off) * (k == c) + p_off * pi[k])
                     for c in range(num_categories)])
    post /= post.sum()
  item_context = name == oracle.ORACLE_CONTEXT_ITEM
  return np.array([sum(post[c] * session(c, i, item_context) for c in range(num_categories))
                   for i in range(num_items)])


HAND_PARAMS = {"p_follow": 0.4, "p_convert_viewed": 0.5, "views_per_session_mean": 1.5,
               "p_offcategory_view": 0.2, "p_convert_direct": 0.25, "taste_strength": 2.0,
               "num_styles": 2, "category_popularity": {"A": 0.6, "B": 0.4}}


def _hand_built(params=HAND_PARAMS) -> oracle.GroundTruth:
  items = pd.DataFrame({
      f.ITEM_ID: ["a0", "a1", "a2", "b0", "b1"],
      f.GT_PRIMARY_CATEGORY: ["A", "A", "A", "B", "B"],
      f.GT_POPULARITY: [0.5, 0.3, 0.2, 0.7, 0.3],
      generator.GT_STYLE: [0, 1, 0, 1, 0],
  })
  conversions = pd.DataFrame({
      f.USER_ID: ["u1", "u2", "u3"],
      f.ITEM_ID: ["a0", "b1", "b0"],
      f.TIMESTAMP: [100, 200, 300],
      f.GT_INTENT_CATEGORY: ["A", "B", "B"],
      f.GT_LAST_VIEW_ITEM_ID: ["a2", "a1", ""],  # u2's last view is off intent; u3 is direct.
      f.GT_INTEREST_CATEGORIES: [["B"], ["A", "B"], ["B"]],
      f.GT_INTEREST_WEIGHTS: [[1.0], [0.5, 0.5], [1.0]],
      generator.GT_USER_STYLE: [0, 1, 1],
      generator.GT_DIRECT: [False, False, True],
  })
  return oracle.make_ground_truth(items, conversions, params)


def test_probabilities_are_the_documented_formulas_and_sum_to_one(tiny):
  hand = _hand_built()
  truth, conversions = tiny
  direct = np.flatnonzero(conversions[generator.GT_DIRECT].to_numpy())[:3]
  primary = truth.primary[np.maximum(truth.last_view, 0)]
  off = np.flatnonzero((truth.last_view >= 0) & (primary != truth.intent))[:3]
  on = np.flatnonzero((truth.last_view >= 0) & (primary == truth.intent))[:3]
  for world, rows in ((hand, np.arange(3)), (truth, np.concatenate([direct, off, on]))):
    probabilities = oracle.conversion_probabilities(world, rows)
    assert list(probabilities) == list(oracle.ORACLES)
    for name, matrix in probabilities.items():
      assert matrix.shape == (rows.size, world.item_ids.size)
      np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-12)
      for r, row in enumerate(rows):
        np.testing.assert_allclose(matrix[r], _formula(world, row, name), rtol=1e-12, atol=1e-15)


def test_hand_built_values_and_rankings():
  truth = _hand_built()
  assert oracle.expected_inverse_views(1.5) == pytest.approx(0.5179, abs=1e-4)
  p = oracle.conversion_probabilities(truth, [0, 1, 2])
  # u1: intent A, v = a2 (in A), style 0. M(A, 0) = 0.7: f = pop (1 + 2 [style 0]) / 2.4 on A,
  # i.e. (0.625, 0.125, 0.25). q_A = 1 - 0.2 * 0.4 = 0.92. The v term is 0.5 E[1/n] = 0.2590,
  # earlier views 0.5 (1 - E[1/n]) q_A = 0.2218 pop_A, and the fresh draw takes
  # F = 0.5 + 0.5 (1 - E[1/n]) 0.08 = 0.5193: a0 0.4354, a1 0.1314, a2 0.4331.
  np.testing.assert_allclose(p[oracle.ORACLE_CONTEXTUAL][0], [0.4354, 0.1314, 0.4331, 0, 0],
                             atol=1e-4)
  # Not knowing the intent: w_u1 = 0.4 (0, 1) + 0.6 (0.6, 0.4) = (0.36, 0.64); v = a2 gives
  # P(A) ∝ 0.36 * 0.92, P(B) ∝ 0.64 * 0.2 * 0.6: P(A | u1, a2) = 0.8118.
  np.testing.assert_allclose(p[oracle.ORACLE_CONTEXT_ITEM][0, :3],
                             0.8118 * p[oracle.ORACLE_CONTEXTUAL][0, :3], atol=1e-4)
  # Knowing only cat(v) = A, the v term spreads over A by popularity: a0 gets
  # 0.8118 * (0.2590 * 0.5 + 0.2218 * 0.5 + 0.5193 * 0.625) = 0.4586.
  assert p[oracle.ORACLE_CONTEXT_CATEGORIES][0, 0] == pytest.approx(0.4586, abs=1e-4)
  # History: A_A = 0.75 * 0.5 * 0.92 = 0.345; a0 gets 0.36 (0.345 * 0.5 + 0.655 * 0.625).
  assert p[oracle.ORACLE_HISTORY][0, 0] == pytest.approx(0.2095, abs=1e-4)
  # u2: intent B, v = a1 off intent, style 1 (b0's): no v term, b0 0.8379, b1 0.1621.
  np.testing.assert_allclose(p[oracle.ORACLE_CONTEXTUAL][1], [0, 0, 0, 0.8379, 0.1621],
                             atol=1e-4)
  # u3: intent B, direct: the fresh draw alone, M(B, 1) = 0.7: b0 0.7 * 3 / 2.4, b1 0.3 / 2.4.
  np.testing.assert_allclose(p[oracle.ORACLE_CONTEXTUAL][2], [0, 0, 0, 0.875, 0.125], atol=1e-12)
  top = {name: top.tolist() for name, top in oracle.oracle_top_k(truth, truth.keys, 5).items()}
  assert top[oracle.ORACLE_CONTEXTUAL] == [["a0", "a2", "a1", "b0", "b1"],
                                           ["b0", "b1", "a0", "a1", "a2"],
                                           ["b0", "b1", "a0", "a1", "a2"]]
  # Taste reorders B for u1 (style 0 is b1's): b1 before b0 outside the intent.
  assert top[oracle.ORACLE_CONTEXT_ITEM][0] == ["a0", "a2", "a1", "b1", "b0"]
  # u2's context a1 is off intent: the intent-blind oracles follow it.
  assert top[oracle.ORACLE_CONTEXT_ITEM][1][0] == "a1"
  assert top[oracle.ORACLE_HISTORY][0] == ["b0", "b1", "a0", "a2", "a1"]
  recall = oracle.oracle_recall(truth, truth.keys, [1, 2, 5])
  assert set(recall) == set(oracle.ORACLES)
  # u2's b1 is second for the contextual oracle, last for the item oracle.
  assert recall[oracle.ORACLE_CONTEXTUAL] == {1: pytest.approx(2 / 3), 2: 1.0, 5: 1.0}
  assert recall[oracle.ORACLE_CONTEXT_ITEM] == {1: pytest.approx(2 / 3), 2: pytest.approx(2 / 3),
                                                5: 1.0}


def test_old_ground_truth_without_the_new_columns_is_the_process_without_them():
  items = pd.DataFrame({f.ITEM_ID: ["a0", "a1", "b0"], f.GT_PRIMARY_CATEGORY: ["A", "A", "B"],
                        f.GT_POPULARITY: [0.6, 0.4, 1.0]})
  conversions = pd.DataFrame({
      f.USER_ID: ["u1"], f.ITEM_ID: ["a0"], f.TIMESTAMP: [1], f.GT_INTENT_CATEGORY: ["A"],
      f.GT_LAST_VIEW_ITEM_ID: ["a1"], f.GT_INTEREST_CATEGORIES: [["A"]],
      f.GT_INTEREST_WEIGHTS: [[1.0]]})
  truth = oracle.make_ground_truth(items, conversions, {
      "p_follow": 0.4, "p_convert_viewed": 0.5, "views_per_session_mean": 1.5,
      "category_popularity": {"A": 0.5, "B": 0.5}})
  inverse = oracle.expected_inverse_views(1.5)
  bonus, scale = 0.5 * inverse, 1 - 0.5 * inverse
  np.testing.assert_allclose(oracle.conversion_probabilities(truth, [0])["oracle_contextual"][0],
                             [scale * 0.6, bonus + scale * 0.4, 0.0])


# ---- Monte Carlo: the generator's sampling code against the oracles' probabilities. ----

MC_CONFIG = GeneratorConfig(num_users=1, num_items=40, num_categories=4, num_days=1, num_styles=3,
                            taste_strength=4.0, p_offcategory_view=0.3, p_convert_direct=0.2,
                            p_convert=1.0, p_convert_viewed=0.6, views_per_session_mean=1.5,
                            p_follow=0.5, core_interests_min=1, core_interests_max=3)
MC_SESSIONS = 300_000
MC_STYLE = 1


@pytest.fixture(scope="module")
def simulated():
  """A user (interests c1: 0.7, c3: 0.3; style 1) converting in MC_SESSIONS sessions."""
  config, rng = MC_CONFIG, np.random.default_rng(2024)
  catalog, _ = generator._build_catalog(config, rng)
  users = generator._Users(
      country=np.zeros(1, np.int64), age=np.zeros(1, np.int64), num_interests=np.array([2]),
      interests=np.array([[1, 3, -1]]), weights=np.array([[0.7, 0.3, 0.0]]),
      style=np.array([MC_STYLE]), is_new=np.array([False]))
  owner = np.zeros(MC_SESSIONS, np.int64)
  intent = generator._draw_intents(config, users, owner, catalog.pi_cdf, rng)
  sessions = generator._Sessions(owner, owner, intent, np.full(MC_SESSIONS, MC_STYLE))
  events = generator._draw_events(config, catalog, sessions, rng)
  assert events.conversions.size == MC_SESSIONS
  draws = pd.DataFrame({"intent": intent[events.session[events.conversions]],
                        "last_view": events.last_view, "item": events.item[events.conversions]})
  items = generator._ground_truth_items_table(catalog).to_pandas()
  params = json.loads(generator._ground_truth_metadata(config, catalog, 0)[generator.METADATA_KEY])
  return catalog, items, params, draws


def _states(catalog, draws: pd.DataFrame) -> tuple:
  """One ground-truth row per distinct (intent, last view) of the simulation, and its keys."""
  states = draws[["intent", "last_view"]].drop_duplicates().reset_index(drop=True)
  states["context_category"] = np.where(states.last_view >= 0,
                                        catalog.primary[np.maximum(states.last_view, 0)], -1)
  states["everyone"] = 0
  names = catalog.item_names.to_numpy(zero_copy_only=False)
  truth = pd.DataFrame({
      f.USER_ID: "u",
      f.ITEM_ID: names[0],
      f.TIMESTAMP: np.arange(len(states)),
      f.GT_INTENT_CATEGORY: catalog.category_names.to_numpy(zero_copy_only=False)[states.intent],
      f.GT_LAST_VIEW_ITEM_ID: np.where(states.last_view >= 0,
                                       names[np.maximum(states.last_view, 0)], ""),
      f.GT_INTEREST_CATEGORIES: [["c001", "c003"]] * len(states),
      f.GT_INTEREST_WEIGHTS: [[0.7, 0.3]] * len(states),
      generator.GT_USER_STYLE: MC_STYLE,
      generator.GT_DIRECT: states.last_view.to_numpy() < 0,
  })
  return truth, states


def _chi_square(draws: pd.DataFrame, by: list, states: pd.DataFrame,
                probabilities: np.ndarray, num_items: int) -> tuple:
  """Pearson chi-square of the converted items per group against the oracle's vector.

  Cells expected below 5 are pooled; an item converted where the oracle says 0 is an error.
  """
  statistic, dof = 0.0, 0
  keyed = states.assign(_row=np.arange(len(states))).drop_duplicates(by).set_index(by)["_row"]
  for key, group in draws.groupby(by):
    p = probabilities[keyed.loc[key]]
    observed = np.bincount(group["item"], minlength=num_items)
    assert observed[p == 0].sum() == 0, f"converted an item of probability 0 in group {key}"
    expected = p * len(group)
    big = expected >= 5
    o = np.append(observed[big], observed[~big].sum())
    e = np.append(expected[big], expected[~big].sum())
    keep = e > 0
    statistic += float(((o[keep] - e[keep])**2 / e[keep]).sum())
    dof += int(keep.sum()) - 1
  return statistic, dof


@pytest.mark.parametrize("name, by", [
    (oracle.ORACLE_CONTEXTUAL, ["intent", "last_view"]),
    (oracle.ORACLE_CONTEXT_ITEM, ["last_view"]),
    (oracle.ORACLE_CONTEXT_CATEGORIES, ["context_category"]),
    (oracle.ORACLE_HISTORY, ["everyone"]),
])
def test_simulated_conversions_match_the_oracle_probabilities(simulated, name, by):
  catalog, items, params, draws = simulated
  draws = draws.assign(everyone=0, context_category=np.where(
      draws.last_view >= 0, catalog.primary[np.maximum(draws.last_view, 0)], -1))
  rows, states = _states(catalog, draws)

  def statistic(world_params):
    truth = oracle.make_ground_truth(items, rows, world_params)
    p = oracle.conversion_probabilities(truth, np.arange(len(rows)), [name])[name]
    return _chi_square(draws, by, states, p, catalog.primary.size)

  chi2, dof = statistic(params)
  assert dof > 20
  assert chi2 < dof + 5 * math.sqrt(2 * dof), (chi2, dof)
  # The test has power: an oracle that ignores taste, or has p_convert_viewed a little off, fails.
  for knob, value in (("taste_strength", 0.0), ("p_convert_viewed", 0.5)):
    wrong, wrong_dof = statistic({**params, knob: value})
    assert wrong > wrong_dof + 10 * math.sqrt(2 * wrong_dof), (knob, wrong, wrong_dof)


# ---- Ranking. ----


def test_top_k_equals_a_full_sort_of_the_probabilities(tiny):
  truth, conversions = tiny
  sample = _last_week(conversions).iloc[::3]
  rows = np.flatnonzero(conversions.index.isin(sample.index))
  top = oracle.oracle_top_k(truth, sample[KEYS], 100)
  probabilities = oracle.conversion_probabilities(truth, rows)
  order = np.arange(truth.item_ids.size)
  for name, scores in probabilities.items():
    expected = np.stack([np.lexsort((order, -s))[:100] for s in scores])
    assert top[name].shape == (len(sample), 100)
    np.testing.assert_array_equal(top[name], truth.item_ids[expected])


def test_top_k_of_the_candidate_cells_equals_a_full_sort(tmp_path):
  """A skewed world: cells larger than k (pruned) and categories smaller than k (zero fill)."""
  config = GeneratorConfig(num_users=300, num_items=80, num_categories=6, num_days=10,
                           num_styles=2, min_items_per_category=2, category_zipf_exponent=2.0,
                           core_interests_min=1, core_interests_max=3)
  generator.generate(config, 6, str(tmp_path / "skewed"))
  truth = oracle.load_ground_truth(str(tmp_path / "skewed"))
  category_sizes = np.bincount(truth.primary)
  cell_sizes = np.bincount(truth.primary * truth.num_styles + truth.style)
  assert category_sizes.min() < 7 < cell_sizes.max()
  rows = np.arange(0, len(truth.keys), 7)
  assert truth.direct[rows].any() and not truth.direct[rows].all()
  probabilities = oracle.conversion_probabilities(truth, rows)
  order = np.arange(truth.item_ids.size)
  for k in (1, 3, 7, 80):
    assert (oracle._candidates(truth, k).size < truth.item_ids.size) == (k < cell_sizes.max())
    top = oracle.oracle_top_k(truth, truth.keys.iloc[rows], k)
    for name, scores in probabilities.items():
      expected = np.stack([np.lexsort((order, -s))[:k] for s in scores])
      np.testing.assert_array_equal(top[name], truth.item_ids[expected], err_msg=f"{name} {k}")


def test_top_k_breaks_ties_by_catalog_order_across_blocks(monkeypatch):
  scores = np.array([[0.0, 0.5, 0.0, 0.5, 0.0, 0.2], [0.0] * 6, [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
  assert oracle._top_k(scores, 3).tolist() == [[1, 3, 5], [0, 1, 2], [0, 5, 1]]
  assert oracle._top_k(scores, 6)[1].tolist() == list(range(6))
  assert oracle.rows_per_block(10**6) == 33 and oracle.rows_per_block(10**9) == 1
  truth = _hand_built()
  whole = oracle.oracle_top_k(truth, truth.keys, 5)
  monkeypatch.setattr(oracle, "BLOCK_SCORES", 6)  # One row per block.
  blocked = oracle.oracle_top_k(truth, truth.keys, 5)
  for name in oracle.ORACLES:
    np.testing.assert_array_equal(whole[name], blocked[name])


def test_more_knowledge_ranks_better_on_tiny(tiny):
  truth, conversions = tiny
  week = _last_week(conversions)
  with_context = week[~week[generator.GT_DIRECT]]
  assert len(with_context) > 500
  for sample in (week, with_context):
    recall = oracle.oracle_recall(truth, sample[KEYS], KS)
    assert set(recall) == set(oracle.ORACLES)
    for name in recall:
      values = [recall[name][k] for k in KS]
      assert all(0.0 < v <= 1.0 for v in values) and values == sorted(values)
    at_100 = {name: recall[name][100] for name in recall}
    noise = 0.02
    assert at_100["oracle_contextual"] >= at_100["oracle_context_item"] - noise
    assert at_100["oracle_context_item"] >= at_100["oracle_context_categories"] - noise
    assert at_100["oracle_context_categories"] >= at_100["oracle_history"] - noise
    assert at_100["oracle_context_item"] > at_100["oracle_history"] + 0.05
    assert recall["oracle_contextual"][10] > recall["oracle_history"][10] + 0.2


def test_direct_sessions_have_no_context_and_the_context_oracles_know_it(tiny):
  truth, conversions = tiny
  direct = conversions[generator.GT_DIRECT].to_numpy()
  assert (truth.direct == direct).all() and 0.1 < direct.mean() < 0.3
  assert (conversions[f.GT_LAST_VIEW_ITEM_ID][direct] == "").all()
  rows = np.flatnonzero(direct)[:20]
  p = oracle.conversion_probabilities(truth, rows)
  # No context: the item and categories oracles agree (both know only theta_u and the style).
  np.testing.assert_allclose(p[oracle.ORACLE_CONTEXT_ITEM], p[oracle.ORACLE_CONTEXT_CATEGORIES])
  outside = truth.primary[None, :] != truth.intent[rows, None]
  assert (p[oracle.ORACLE_CONTEXTUAL][outside] == 0).all()


def test_conversions_keep_their_order_and_k_is_validated():
  truth = _hand_built()
  keys = truth.keys.iloc[[1, 0]]
  top = oracle.oracle_top_k(truth, keys, 1)[oracle.ORACLE_CONTEXTUAL]
  assert top.tolist() == [["b0"], ["a0"]]
  with pytest.raises(ValueError, match="k must be in"):
    oracle.oracle_top_k(truth, keys, 6)


def test_unmatched_conversions_are_an_error_naming_the_count_and_first_row():
  truth = _hand_built()
  conversions = pd.DataFrame({f.USER_ID: ["u1", "u9", "u2"], f.ITEM_ID: ["a0", "a1", "b0"],
                              f.TIMESTAMP: [100, 100, 200]})
  with pytest.raises(ValueError, match=r"2 of 3 conversions .*first unmatched.*'u9'.*'a1'"):
    oracle.oracle_recall(truth, conversions, [1])


def test_inconsistent_ground_truth_is_rejected():
  items = pd.DataFrame({f.ITEM_ID: ["a0"], f.GT_PRIMARY_CATEGORY: ["A"], f.GT_POPULARITY: [1.0]})
  row = {f.USER_ID: ["u"], f.ITEM_ID: ["a0"], f.TIMESTAMP: [1], f.GT_INTENT_CATEGORY: ["A"],
         f.GT_INTEREST_CATEGORIES: [["A"]], f.GT_INTEREST_WEIGHTS: [[1.0]]}
  params = {"p_follow": 0.4, "p_convert_viewed": 0.5, "views_per_session_mean": 1.5,
            "category_popularity": {"A": 1.0}}
  with pytest.raises(ValueError, match="unknown last view"):
    oracle.make_ground_truth(items, pd.DataFrame({**row, f.GT_LAST_VIEW_ITEM_ID: ["zz"]}), params)
  with pytest.raises(ValueError, match="disagrees"):
    oracle.make_ground_truth(items, pd.DataFrame({**row, f.GT_LAST_VIEW_ITEM_ID: [""],
                                                  generator.GT_DIRECT: [False]}), params)
