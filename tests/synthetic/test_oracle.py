"""The oracles rank by the true conversion probability, agree with brute force, and fail loudly."""
import math

import numpy as np
import pandas as pd
import pytest

from ctxrec.synthetic import generator, oracle
from ctxrec.synthetic.profiles import PROFILES
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


def test_contextual_oracle_beats_history_oracle_and_recall_grows_with_k(tiny):
  truth, conversions = tiny
  recall = oracle.oracle_recall(truth, _last_week(conversions)[KEYS], KS)
  assert set(recall) == {"oracle_contextual", "oracle_history"}
  for name in recall:
    assert list(recall[name]) == list(KS)
    values = [recall[name][k] for k in KS]
    assert all(0.0 < v <= 1.0 for v in values)
    assert values == sorted(values)
  for k in KS:
    assert recall["oracle_contextual"][k] > recall["oracle_history"][k] + 0.1


def _brute_force(truth: oracle.GroundTruth, rows: np.ndarray, k: int) -> dict:
  """Scores every item for every conversion with the docstring formulas, ties by catalog order."""
  n = 1 + np.arange(100)
  pmf = np.array([math.exp(-truth.views_per_session_mean) * truth.views_per_session_mean ** x
                  / math.factorial(x) for x in range(100)])
  inverse = float((pmf / n).sum())
  p_viewed = truth.p_convert_viewed
  in_intent = truth.primary[None, :] == truth.intent[rows, None]
  is_last = np.arange(truth.item_ids.size)[None, :] == truth.last_view[rows, None]
  contextual = (p_viewed * inverse * is_last
                + (p_viewed * (1 - inverse) + 1 - p_viewed) * truth.popularity * in_intent)
  theta = np.zeros((rows.size, truth.category_ids.size))
  for r, row in enumerate(rows):
    for c, w in zip(truth.interest_categories[row], truth.interest_weights[row]):
      if c >= 0:
        theta[r, c] = w
  w = truth.p_follow * theta + (1 - truth.p_follow) * truth.category_popularity
  history = w[:, truth.primary] * truth.popularity
  order = np.arange(truth.item_ids.size)
  return {
      name: np.stack([np.lexsort((order, -s))[:k] for s in scores])
      for name, scores in (("oracle_contextual", contextual), ("oracle_history", history))
  }


def test_top_k_equals_brute_force_over_the_whole_catalog(tiny):
  truth, conversions = tiny
  sample = _last_week(conversions).iloc[::3]
  rows = np.flatnonzero(conversions.index.isin(sample.index))
  expected = _brute_force(truth, rows, 100)
  top = oracle.oracle_top_k(truth, sample[KEYS], 100)
  for name in expected:
    assert top[name].shape == (len(sample), 100)
    np.testing.assert_array_equal(top[name], truth.item_ids[expected[name]])


def test_last_view_is_converted_as_often_as_the_contextual_oracle_predicts(tiny):
  truth, conversions = tiny
  inverse = oracle.expected_inverse_views(truth.views_per_session_mean)
  p_viewed = truth.p_convert_viewed
  p = (p_viewed * inverse
       + (p_viewed * (1 - inverse) + 1 - p_viewed) * truth.popularity[truth.last_view])
  hit = conversions[f.ITEM_ID].to_numpy() == conversions[f.GT_LAST_VIEW_ITEM_ID].to_numpy()
  assert abs(hit.sum() - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())


def _hand_built() -> oracle.GroundTruth:
  items = pd.DataFrame({
      f.ITEM_ID: ["a0", "a1", "a2", "b0", "b1"],
      f.GT_PRIMARY_CATEGORY: ["A", "A", "A", "B", "B"],
      f.GT_POPULARITY: [0.5, 0.3, 0.2, 0.7, 0.3],
  })
  conversions = pd.DataFrame({
      f.USER_ID: ["u1", "u2"],
      f.ITEM_ID: ["a0", "b1"],
      f.TIMESTAMP: [100, 200],
      f.GT_INTENT_CATEGORY: ["A", "B"],
      f.GT_LAST_VIEW_ITEM_ID: ["a2", "b1"],
      f.GT_INTEREST_CATEGORIES: [["B"], ["A", "B"]],
      f.GT_INTEREST_WEIGHTS: [[1.0], [0.5, 0.5]],
  })
  params = {"p_follow": 0.4, "p_convert_viewed": 0.5, "views_per_session_mean": 1.5,
            "category_popularity": {"A": 0.6, "B": 0.4}}
  return oracle.make_ground_truth(items, conversions, params)


def test_hand_built_rankings():
  truth = _hand_built()
  # E[1/n] = (1 - e^-1.5) / 1.5 = 0.518; P(i|c,v) = 0.259 [i=v] + 0.741 pop_c(i).
  assert oracle.expected_inverse_views(1.5) == pytest.approx(0.5179, abs=1e-4)
  # u1 (A, v=a2): a2 0.407 > a0 0.371 > a1 0.222 > zero-probability b0, b1 in catalog order.
  # u2 (B, v=b1): b0 0.519 > b1 0.481: the last view is not always first.
  # History, w = 0.4 theta + 0.6 pi.
  # u1: w = (0.36, 0.64): b0 .448, b1 .192, a0 .18, a1 .108, a2 .072.
  # u2: w = (0.56, 0.44): b0 .308, a0 .28, a1 .168, b1 .132, a2 .112.
  conversions = pd.DataFrame({f.USER_ID: ["u1", "u2"], f.ITEM_ID: ["a0", "b1"],
                              f.TIMESTAMP: [100, 200]})
  top = oracle.oracle_top_k(truth, conversions, 5)
  assert top["oracle_contextual"].tolist() == [["a2", "a0", "a1", "b0", "b1"],
                                               ["b0", "b1", "a0", "a1", "a2"]]
  assert top["oracle_history"].tolist() == [["b0", "b1", "a0", "a1", "a2"],
                                            ["b0", "a0", "a1", "b1", "a2"]]
  recall = oracle.oracle_recall(truth, conversions, [1, 2, 3, 4])
  assert recall["oracle_contextual"] == {1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0}
  assert recall["oracle_history"] == {1: 0.0, 2: 0.0, 3: 0.5, 4: 1.0}


def test_conversions_keep_their_order_and_k_is_validated():
  truth = _hand_built()
  swapped = pd.DataFrame({f.USER_ID: ["u2", "u1"], f.ITEM_ID: ["b1", "a0"],
                          f.TIMESTAMP: [200, 100]})
  assert oracle.oracle_top_k(truth, swapped, 1)["oracle_contextual"].tolist() == [["b0"], ["a2"]]
  with pytest.raises(ValueError, match="k must be in"):
    oracle.oracle_top_k(truth, swapped, 6)


def test_unmatched_conversions_are_an_error_naming_the_count_and_first_row():
  truth = _hand_built()
  conversions = pd.DataFrame({f.USER_ID: ["u1", "u9", "u2"], f.ITEM_ID: ["a0", "a1", "b0"],
                              f.TIMESTAMP: [100, 100, 200]})
  with pytest.raises(ValueError, match=r"2 of 3 conversions .*first unmatched.*'u9'.*'a1'"):
    oracle.oracle_recall(truth, conversions, [1])
