"""The blessing rule: context must pay off beyond the noise with context, and not hurt without it.

A model is blessed iff
(a) real_context: for every baseline, the lower bound of the paired 95% interval of the model's
    relative Recall@100 lift clears `margin` (a point estimate above the baseline is not enough:
    the lift must stand out of the user-level noise);
(b) no_context: the lower bound of its paired lift over popularity clears
    `no_context_floor_margin` (-10%): a non-inferiority floor, the model without context must be
    shown no worse than the simplest heuristic by more than that (on a short log history cannot
    prove it beats popularity; a fallback far below it must not be served);
(c) no_context: its Recall@100 is at least `no_context_ratio` x the history-only model's (point
    estimates: context must not cost what history alone gives).
With no real-context eval example, (a) cannot be checked: the reasons say so and (b), (c) decide.
Oracles never gate.
"""
import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig

NO_REAL_CONTEXT = ("no eval example has a real context: the real-context rules cannot be "
                   "checked; decided on the no-context rules")

Check = Tuple[bool, str]


def decide(metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
           lifts: Mapping[str, Mapping[str, Mapping[str, Any]]],
           config: EvaluatorConfig) -> Tuple[bool, List[str]]:
  """(blessed, one reason per check) from the summary's "metrics" and "lifts"."""
  checks = _real_context_checks(metrics, lifts, config)
  reasons = [] if checks else [NO_REAL_CONTEXT]
  checks += [_lift_check(metrics, lifts, m.NO_CONTEXT, m.POPULARITY,
                         config.no_context_floor_margin, "no_context_floor_margin"),
             _ratio_check(metrics, config.no_context_ratio)]
  return all(passed for passed, _ in checks), reasons + [reason for _, reason in checks]


def _real_context_checks(metrics, lifts, config: EvaluatorConfig) -> List[Check]:
  """Rule (a), one check per baseline; none when no eval example has a real context."""
  if _count(metrics, m.CONTEXTUAL, m.REAL_CONTEXT) == 0:
    return []
  return [_lift_check(metrics, lifts, m.REAL_CONTEXT, baseline, config.margin, "margin")
          for baseline in m.BASELINE_METHODS if m.REAL_CONTEXT in metrics.get(baseline, {})]


def _count(metrics, method: str, mode: str) -> int:
  return int(metrics.get(method, {}).get(mode, {}).get(m.COUNT, 0))


def _lift_check(metrics, lifts, mode: str, baseline: str, margin: float, name: str) -> Check:
  """Passes when the paired lift's lower bound is above `margin`."""
  entry = lifts.get(mode, {}).get(baseline)
  if entry is None or not entry.get(m.COUNT):
    return False, f"FAIL: {mode} {m.TARGET} vs {baseline}: no eval example to compare on"
  lo, hi = (_number(bound) for bound in entry["interval"])
  passed = lo > margin
  ours = metrics[m.CONTEXTUAL][mode][m.TARGET]
  theirs = metrics[baseline][mode][m.TARGET]
  users = f" of {entry['users']} users" if "users" in entry else ""
  return passed, (
      f"{'pass' if passed else 'FAIL'}: {mode} {m.TARGET} {ours:.4f} vs {baseline} "
      f"{theirs:.4f}: lift {m.percent(entry['lift'])}, paired 95% interval [{m.percent(lo)}, "
      f"{m.percent(hi)}] ({entry[m.COUNT]} examples{users}); lower bound "
      f"{'>' if passed else '<='} {name} {m.percent(margin)}")


def _ratio_check(metrics, ratio: float) -> Check:
  """Rule (c): no-context recall against a share of the history-only model's."""
  ours = metrics[m.CONTEXTUAL][m.NO_CONTEXT][m.TARGET]
  theirs = metrics[m.HISTORY_ONLY][m.NO_CONTEXT][m.TARGET]
  passed = ours >= ratio * theirs
  return passed, (f"{'pass' if passed else 'FAIL'}: {m.NO_CONTEXT} {m.TARGET} {ours:.4f} "
                  f"{'>=' if passed else '<'} no_context_ratio {ratio} x {m.HISTORY_ONLY} "
                  f"{theirs:.4f} = {ratio * theirs:.4f} (point estimates)")


def _number(value: Optional[float]) -> float:
  """A lift or bound as a float: summary.json writes an unbounded one (+inf) as null."""
  return math.inf if value is None else float(value)


def parameters(config: EvaluatorConfig) -> Dict[str, Any]:
  """The rule's parameters, as summary.json's "blessing" records them beside the reasons."""
  return {"rule": m.TARGET, "margin": config.margin,
          "no_context_floor_margin": config.no_context_floor_margin,
          "no_context_ratio": config.no_context_ratio}
