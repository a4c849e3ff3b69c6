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


def _world(model_real: float, model_none: float, seed: int = 0, n: int = 2000,
           session_views: float = 0.55):
  """Per-mode ranks: baselines at fixed shares (session_views' given), the model at the given
  ones; one user each."""
  rng = np.random.default_rng(seed)
  real = {m.CONTEXTUAL: _hits(model_real, n, rng), m.HISTORY_ONLY: _hits(0.3, n, rng),
          m.POPULARITY: _hits(0.2, n, rng), m.CONTEXT_POPULARITY: _hits(0.5, n, rng),
          m.LAST_VIEWED: _hits(0.55, n, rng), m.SESSION_VIEWS: _hits(session_views, n, rng),
          m.ORACLE_CONTEXTUAL: np.full(n, HIT)}
  none = {m.CONTEXTUAL: _hits(model_none, n, rng), m.HISTORY_ONLY: _hits(0.3, n, rng)}
  none.update({b: real[m.POPULARITY] for b in (m.POPULARITY, m.CONTEXT_POPULARITY,
                                                m.LAST_VIEWED, m.SESSION_VIEWS)})
  return real, none, np.arange(n), np.arange(n)


def test_blessed_when_every_lower_bound_clears_and_no_context_holds():
  blessed, reasons = _evaluate(*_world(0.8, 0.3))
  assert blessed and len(reasons) == 5 + 2 and all(r.startswith("pass") for r in reasons)
  assert any("last_viewed" in r and "paired 95% interval" in r for r in reasons)
  assert any(r.startswith("pass: real_context recall@100") and "vs session_views" in r
             for r in reasons)


def test_session_views_gates_like_last_viewed():
  # The model beats last_viewed (0.55) clearly, but not session_views (0.75).
  real, none, users_real, users_none = _world(0.72, 0.3, session_views=0.75)
  blessed, reasons = _evaluate(real, none, users_real, users_none)
  assert not blessed
  failed = [r for r in reasons if r.startswith("FAIL")]
  assert len(failed) == 1 and "vs session_views" in failed[0] and "margin" in failed[0]
  assert next(r for r in reasons if "vs last_viewed" in r).startswith("pass")
  del real[m.SESSION_VIEWS]  # without it, the same model is blessed
  assert _evaluate(real, none, users_real, users_none)[0]
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


# ---- why_not: the one line `ctxrec run` prints and report.md shows when the model is refused.


def _lift(lift, lo, hi, n=405, users=120):
  return {"lift": lift, "interval": [lo, hi], "n": n, "users": users}


PASSING = _lift(0.5, 0.3, 0.7)


def _summary(real=None, floor=PASSING, no_context=(0.3, 0.3), config=EvaluatorConfig()):
  """A summary.json by hand, blessed and reasons by decide(): every check passes but the
  `real` lifts given (baseline -> lift), the no-context `floor` lift over popularity, and
  `no_context` (contextual, history_only) recall@100."""
  metrics = {x: {m.REAL_CONTEXT: {**dict.fromkeys(m.METRIC_NAMES, 0.4), m.COUNT: 405},
                 m.NO_CONTEXT: {**dict.fromkeys(m.METRIC_NAMES, 0.3), m.COUNT: 500}}
             for x in (m.CONTEXTUAL,) + m.BASELINE_METHODS}
  metrics[m.CONTEXTUAL][m.NO_CONTEXT][m.TARGET] = no_context[0]
  metrics[m.HISTORY_ONLY][m.NO_CONTEXT][m.TARGET] = no_context[1]
  lifts = {m.REAL_CONTEXT: {**{b: PASSING for b in m.BASELINE_METHODS}, **(real or {})},
           m.NO_CONTEXT: {m.POPULARITY: floor}}
  blessed, reasons = blessing.decide(metrics, lifts, config)
  return {"blessed": blessed, "metrics": metrics, "lifts": lifts,
          "blessing": {"reasons": reasons, **blessing.parameters(config)}}


def test_why_not_is_none_for_a_blessed_model():
  summary = _summary()
  assert summary["blessed"] and blessing.why_not(summary) is None


def test_why_not_a_lift_inside_the_noise_asks_for_more_eval_data():
  summary = _summary({m.LAST_VIEWED: _lift(-0.031, -0.090, 0.027)})
  assert not summary["blessed"]
  assert blessing.why_not(summary) == (
      "not blessed: real_context recall@100 vs last_viewed: lift -3.1% [-9.0%, +2.7%] (lower "
      "bound <= margin +0.0%); with 405 real_context eval examples of 120 users the interval is "
      "wide: more days of log, a longer --eval-days, or more --train-steps would change it")


def test_why_not_a_lift_clearly_below_a_baseline_names_it_and_asks_for_a_better_model():
  line = blessing.why_not(_summary({m.CONTEXT_POPULARITY: _lift(-0.2, -0.3, -0.1)}))
  assert line.startswith("not blessed: real_context recall@100 vs context_popularity: lift "
                         "-20.0% [-30.0%, -10.0%] (lower bound <= margin +0.0%); ")
  assert "the model loses to context_popularity beyond the noise" in line
  assert "more --train-steps or more days of train data" in line
  assert "interval is wide" not in line and line.endswith("not a longer --eval-days")


def test_why_not_below_session_views_says_what_follows_the_pinned_views():
  line = blessing.why_not(_summary({m.SESSION_VIEWS: _lift(-0.12, -0.2, -0.05)}))
  assert line.startswith("not blessed: real_context recall@100 vs session_views: lift -12.0% ")
  assert ("the model loses to session_views beyond the noise: the session's viewed items lead "
          "both, so what the model ranks after them loses to their categories by "
          "recency-weighted popularity: more --train-steps") in line
  assert line.endswith("not a longer --eval-days")


def test_why_not_the_no_context_floor_under_popularity():
  below = blessing.why_not(_summary(floor=_lift(-0.25, -0.35, -0.15, n=500, users=200)))
  assert below.startswith("not blessed: no_context recall@100 vs popularity: lift -25.0% "
                          "[-35.0%, -15.0%] (lower bound <= no_context_floor_margin -10.0%); ")
  assert "without context the model loses to popularity" in below
  assert "a higher --context-dropout" in below
  wide = blessing.why_not(_summary(floor=_lift(-0.05, -0.2, 0.1, n=500, users=200)))
  assert "with 500 no_context eval examples of 200 users the interval is wide" in wide


def test_why_not_the_no_context_ratio_against_history_only():
  line = blessing.why_not(_summary(no_context=(0.2, 0.3)))
  assert line.startswith("not blessed: no_context recall@100 0.2000 vs history_only 0.3000: "
                         "0.67x (< no_context_ratio 0.9x); ")
  assert "without context the model loses what history alone gives" in line
  assert "--context-dropout" in line and "--train-steps" in line


def test_why_not_names_the_decisive_failure_and_counts_the_others():
  summary = _summary({m.HISTORY_ONLY: _lift(0.01, -0.5, 0.6),  # wide, the lowest bound
                      m.POPULARITY: _lift(-0.1, -0.2, -0.01)},  # below: more data won't do
                     no_context=(0.2, 0.3))
  line = blessing.why_not(summary)
  assert line.startswith("not blessed: real_context recall@100 vs popularity: ")
  assert line.endswith("; 2 more checks fail (see report.md)")
  wide = blessing.why_not(_summary({m.HISTORY_ONLY: _lift(0.01, -0.5, 0.6),
                                    m.LAST_VIEWED: _lift(0.02, -0.01, 0.05)}))
  assert "vs history_only" in wide and wide.endswith("; 1 more check fails (see report.md)")


def test_why_not_uses_the_summary_s_thresholds_and_survives_json():
  import json
  config = EvaluatorConfig(margin=-0.5)
  summary = _summary({m.LAST_VIEWED: _lift(-0.2, -0.3, None)}, no_context=(0.2, 0.3),
                     config=config)  # null: an unbounded upper bound, as summary.json has it
  line = blessing.why_not(json.loads(json.dumps(summary)))
  assert "vs last_viewed" not in line  # -30% clears margin -50%
  assert line.startswith("not blessed: no_context recall@100 0.2000 vs history_only")


def test_why_not_on_a_partial_summary_quotes_the_recorded_failure():
  summary = {"blessed": False, "metrics": {},
             "blessing": {"reasons": ["pass: x", "FAIL: no_context recall@100 vs popularity: no "
                                      "eval example to compare on"]}}
  assert blessing.why_not(summary) == (
      "not blessed: no_context recall@100 vs popularity: no eval example to compare on")
  summary["blessing"]["reasons"] = []
  assert "rerun the evaluation" in blessing.why_not(summary)


def test_the_advice_names_only_flags_ctxrec_run_accepts():
  from ctxrec.pipeline import cli
  for flag in blessing.ADVICE_FLAGS:
    args = cli._parser().parse_args(["run", "--data", "d", "--out", "o", flag, "0.5"
                                     if flag == blessing.CONTEXT_DROPOUT_FLAG else "3"])
    assert getattr(args, flag[2:].replace("-", "_")) in (0.5, 3), flag


def test_ctxrec_run_prints_the_one_line_when_refused(tmp_path, monkeypatch, capsys):
  import types
  from ctxrec.pipeline import cli, local_runner
  scan = types.SimpleNamespace(rows=1, views=0, conversions=1, users=1, drop_counts=dict)
  inputs = types.SimpleNamespace(scan=scan, warnings=[], split=types.SimpleNamespace(
      eval_start_date="2026-01-02", train_examples=1, eval_examples=1))
  summary = {**_summary({m.LAST_VIEWED: _lift(-0.031, -0.090, 0.027)}), "eval_examples": 405,
             "model_version": None}
  monkeypatch.setattr(local_runner, "run_local", lambda config, on_checked: local_runner.RunSummary(
      [], {}, 1.0, report=summary, inputs=inputs))
  assert cli.main(["run", "--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
  printed = capsys.readouterr().out.splitlines()
  assert [line for line in printed if line.startswith("not blessed")] == [
      blessing.why_not(summary)]
  assert printed[printed.index(blessing.why_not(summary)) - 1].startswith("blessed: False;")
