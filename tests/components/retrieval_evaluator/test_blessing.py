"""The blessing rule on statistics of hand-made ranks: lower bounds of paired lifts, not points."""
import numpy as np
import pytest

from ctxrec.components.retrieval_evaluator import blessing
from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig

HIT, MISS = 1.0, 1000.0


def _hits(share: float, n: int, rng) -> np.ndarray:
  """Ranks of n examples of which about `share` hit recall@100."""
  return np.where(rng.random(n) < share, HIT, MISS)


def _evaluate(real: dict, none: dict, users_real, users_none, config=EvaluatorConfig()):
  """decide() on the statistics of ranks by method, per mode (as the executor computes them)."""
  stats = {m.REAL_CONTEXT: m.statistics(real, users_real, samples=400),
           m.NO_CONTEXT: m.statistics(none, users_none, samples=400)}
  metrics = {}
  for mode, by_mode in stats.items():
    for method, row in by_mode.metrics.items():
      metrics.setdefault(method, {})[mode] = row
  lifts = {mode: by_mode.lifts for mode, by_mode in stats.items()}
  return blessing.decide(metrics, lifts, config)


def _world(model_real: float, model_none: float, seed: int = 0, n: int = 2000):
  """Per-mode ranks: baselines at fixed shares, the model at the given ones; one user each."""
  rng = np.random.default_rng(seed)
  real = {m.CONTEXTUAL: _hits(model_real, n, rng), m.HISTORY_ONLY: _hits(0.3, n, rng),
          m.POPULARITY: _hits(0.2, n, rng), m.CONTEXT_POPULARITY: _hits(0.5, n, rng),
          m.LAST_VIEWED: _hits(0.55, n, rng), m.ORACLE_CONTEXTUAL: np.full(n, HIT)}
  none = {m.CONTEXTUAL: _hits(model_none, n, rng), m.HISTORY_ONLY: _hits(0.3, n, rng)}
  none.update({b: real[m.POPULARITY] for b in (m.POPULARITY, m.CONTEXT_POPULARITY,
                                                m.LAST_VIEWED)})
  return real, none, np.arange(n), np.arange(n)


def test_blessed_when_every_lower_bound_clears_and_no_context_holds():
  blessed, reasons = _evaluate(*_world(0.8, 0.3))
  assert blessed and len(reasons) == 4 + 2 and all(r.startswith("pass") for r in reasons)
  assert any("last_viewed" in r and "paired 95% interval" in r for r in reasons)
  assert not any("oracle" in r for r in reasons)  # oracles never gate


def test_a_model_below_popularity_without_context_is_refused():
  blessed, reasons = _evaluate(*_world(0.8, 0.15))
  assert not blessed
  failed = [r for r in reasons if r.startswith("FAIL")]
  assert any("no_context" in r and "popularity" in r and "no_context_floor_margin" in r
             for r in failed)


def test_without_context_matching_popularity_clears_the_non_inferiority_floor():
  real, none, users_real, users_none = _world(0.8, 0.3)
  # No better and no worse than popularity, as is history alone (the ratio rule holds).
  none[m.CONTEXTUAL], none[m.HISTORY_ONLY] = none[m.POPULARITY].copy(), none[m.POPULARITY].copy()
  blessed, reasons = _evaluate(real, none, users_real, users_none)
  assert blessed
  assert any("no_context" in r and "lower bound > no_context_floor_margin -10.0%" in r
             for r in reasons)


def test_a_lift_inside_the_noise_is_refused_though_the_point_estimate_is_above():
  # 200 users; the model and last_viewed agree but on 16 users: the model wins 10, loses 6, a
  # +3.9% lift the old rule (point estimates, 2% margin) blessed.
  rng = np.random.default_rng(5)
  base = _hits(0.5, 200, rng)
  model = base.copy()
  flip_up = np.flatnonzero(base == MISS)[:10]
  flip_down = np.flatnonzero(base == HIT)[:6]
  model[flip_up], model[flip_down] = HIT, MISS
  real = {m.CONTEXTUAL: model, m.LAST_VIEWED: base}
  none = {m.CONTEXTUAL: np.full(200, HIT), m.HISTORY_ONLY: np.full(200, HIT),
          m.POPULARITY: base}
  blessed, reasons = _evaluate(real, none, np.arange(200), np.arange(200))
  assert m.metrics_from_ranks(model)["recall@100"] > m.metrics_from_ranks(base)["recall@100"]
  assert not blessed
  line = next(r for r in reasons if "real_context" in r and "last_viewed" in r)
  assert line.startswith("FAIL") and "lift +3.9%" in line
  assert "interval [-" in line and "lower bound <= margin +0.0%" in line


def test_with_no_real_context_example_the_no_context_rules_decide():
  real, none, _, users = _world(0.8, 0.3)
  empty = {method: np.zeros(0) for method in real}
  blessed, reasons = _evaluate(empty, none, np.zeros(0), users)
  assert reasons[0] == blessing.NO_REAL_CONTEXT == (
      "no eval example has a real context: the real-context rules cannot be checked; decided on "
      "the no-context rules")
  assert blessed and len(reasons) == 3 and all(r.startswith("pass") for r in reasons[1:])
  _, bad, _, _ = _world(0.8, 0.1)
  blessed, reasons = _evaluate(empty, bad, np.zeros(0), users)
  assert not blessed and reasons[0] == blessing.NO_REAL_CONTEXT


def test_no_context_ratio_is_a_point_estimate_check():
  blessed, reasons = _evaluate(*_world(0.8, 0.25), config=EvaluatorConfig(no_context_ratio=0.9))
  assert not blessed
  assert [r for r in reasons if r.startswith("FAIL") and "no_context_ratio 0.9" in r]


def test_users_with_many_examples_make_the_rule_stricter():
  # The same hit rates, but the model's hits gathered on a few of 20 users of 100 examples each
  # (a user's conversions resemble each other): its edge over last_viewed is noise then.
  real, none, users, _ = _world(0.6, 0.3, seed=3)
  assert _evaluate(real, none, users, users)[0]
  few = users // 100
  clustered = {method: np.sort(r) if method == m.CONTEXTUAL else r for method, r in real.items()}
  assert not _evaluate(clustered, none, few, few)[0]


def test_margins_are_configurable_and_validated():
  world = _world(0.5, 0.3)  # below last_viewed (0.55)
  assert not _evaluate(*world)[0]
  assert _evaluate(*world, config=EvaluatorConfig(margin=-0.3))[0]
  assert not _evaluate(*_world(0.8, 0.2),
                       config=EvaluatorConfig(no_context_floor_margin=0.5))[0]
  for name in ("margin", "no_context_floor_margin"):
    with pytest.raises(ValueError, match=name):
      EvaluatorConfig(**{name: -1.0})
  with pytest.raises(ValueError, match="context_mode"):
    EvaluatorConfig(context_mode="session")
