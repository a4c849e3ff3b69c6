"""The blessing rule: context must pay off beyond the noise with context, and not hurt without it.

A model is blessed iff
(a) real_context: for every baseline (metrics.BASELINE_METHODS, down to session_views, the
    session's viewed items first, the strongest heuristic), the lower bound of the paired 95%
    interval of the model's relative Recall@100 lift clears `margin` (a point estimate above the
    baseline is not enough: the lift must stand out of the user-level noise);
(b) no_context: the lower bound of its paired lift over popularity clears
    `no_context_floor_margin` (-10%): a non-inferiority floor, the model without context must be
    shown no worse than the simplest heuristic by more than that (on a short log history cannot
    prove it beats popularity; a fallback far below it must not be served);
(c) no_context: its Recall@100 is at least `no_context_ratio` x the history-only model's (point
    estimates: context must not cost what history alone gives).
With no real-context eval example, (a) cannot be checked: the reasons say so and (b), (c) decide.
Oracles never gate. why_not(summary) says in one line which check refused a model and what would
change it (`ctxrec run` prints it, report.md shows it).
"""
import dataclasses
import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig

NO_REAL_CONTEXT = ("no eval example has a real context: the real-context rules cannot be "
                   "checked; decided on the no-context rules")
THRESHOLDS = ("margin", "no_context_floor_margin", "no_context_ratio")  # EvaluatorConfig fields

# `ctxrec run` flags the advice names (a test checks that the CLI accepts each).
EVAL_DAYS_FLAG = "--eval-days"
TRAIN_STEPS_FLAG = "--train-steps"
CONTEXT_DROPOUT_FLAG = "--context-dropout"
ADVICE_FLAGS = (EVAL_DAYS_FLAG, TRAIN_STEPS_FLAG, CONTEXT_DROPOUT_FLAG)

# The baselines that pin viewed items as the model does: where the model must do better.
_AFTER_PINNED = {
    m.LAST_VIEWED: "the viewed item leads both, so what the model ranks after it loses to its "
                   "categories by popularity",
    m.SESSION_VIEWS: "the session's viewed items lead both, so what the model ranks after them "
                     "loses to their categories by recency-weighted popularity"}

# How a check failed, most decisive first: more eval data cannot fix the first two.
BELOW = "below"  # the whole lift interval is at or below the margin: the model loses
SHORT = "short"  # the no-context recall is under the history-only share
WIDE = "wide"  # the interval straddles the margin: too few examples to tell
EMPTY = "empty"  # no eval example to compare on
FAILURES = (BELOW, SHORT, WIDE, EMPTY)


@dataclasses.dataclass(frozen=True)
class Check:
  """One check of the rule: its reason line and, when it fails, how, for why_not's advice."""
  passed: bool
  reason: str
  mode: str
  failure: Optional[str] = None  # one of FAILURES when not passed
  verdict: str = ""  # the failed comparison, short: "real_context recall@100 vs ...: lift ..."
  advice: str = ""  # what would change it
  gap: float = 0.0  # lower bound - margin (lift checks): how far from passing


def decide(metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
           lifts: Mapping[str, Mapping[str, Mapping[str, Any]]],
           config: EvaluatorConfig) -> Tuple[bool, List[str]]:
  """(blessed, one reason per check) from the summary's "metrics" and "lifts"."""
  done = checks(metrics, lifts, config)
  real = any(check.mode == m.REAL_CONTEXT for check in done)
  reasons = [] if real else [NO_REAL_CONTEXT]
  return all(check.passed for check in done), reasons + [check.reason for check in done]


def checks(metrics, lifts, config: EvaluatorConfig) -> List[Check]:
  """Every check of rules (a), (b), (c), in the order of the reasons."""
  return _real_context_checks(metrics, lifts, config) + [
      _lift_check(metrics, lifts, m.NO_CONTEXT, m.POPULARITY, config.no_context_floor_margin,
                  "no_context_floor_margin"),
      _ratio_check(metrics, config.no_context_ratio)]


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
    verdict = f"{mode} {m.TARGET} vs {baseline}: no eval example to compare on"
    return Check(False, f"FAIL: {verdict}", mode, EMPTY, verdict, _advice_empty(mode))
  lo, hi = (_number(bound) for bound in entry["interval"])
  passed = lo > margin
  ours = metrics[m.CONTEXTUAL][mode][m.TARGET]
  theirs = metrics[baseline][mode][m.TARGET]
  users = f" of {entry['users']} users" if "users" in entry else ""
  interval = f"[{m.percent(lo)}, {m.percent(hi)}]"
  bound = f"lower bound {'>' if passed else '<='} {name} {m.percent(margin)}"
  reason = (f"{'pass' if passed else 'FAIL'}: {mode} {m.TARGET} {ours:.4f} vs {baseline} "
            f"{theirs:.4f}: lift {m.percent(entry['lift'])}, paired 95% interval {interval} "
            f"({entry[m.COUNT]} examples{users}); {bound}")
  if passed:
    return Check(True, reason, mode)
  failure = BELOW if hi <= margin else WIDE
  verdict = (f"{mode} {m.TARGET} vs {baseline}: lift {m.percent(entry['lift'])} {interval} "
             f"({bound})")
  advice = (_advice_wide(mode, entry[m.COUNT], users) if failure == WIDE
            else _advice_below(mode, baseline))
  return Check(False, reason, mode, failure, verdict, advice, lo - margin)


def _ratio_check(metrics, ratio: float) -> Check:
  """Rule (c): no-context recall against a share of the history-only model's."""
  ours = metrics[m.CONTEXTUAL][m.NO_CONTEXT][m.TARGET]
  theirs = metrics[m.HISTORY_ONLY][m.NO_CONTEXT][m.TARGET]
  passed = ours >= ratio * theirs
  reason = (f"{'pass' if passed else 'FAIL'}: {m.NO_CONTEXT} {m.TARGET} {ours:.4f} "
            f"{'>=' if passed else '<'} no_context_ratio {ratio} x {m.HISTORY_ONLY} "
            f"{theirs:.4f} = {ratio * theirs:.4f} (point estimates)")
  if passed:
    return Check(True, reason, m.NO_CONTEXT)
  verdict = (f"{m.NO_CONTEXT} {m.TARGET} {ours:.4f} vs {m.HISTORY_ONLY} {theirs:.4f}: "
             f"{ours / theirs:.2f}x (< no_context_ratio {ratio}x)")
  advice = (f"without context the model loses what history alone gives: a higher "
            f"{CONTEXT_DROPOUT_FLAG} (more training examples without context) or more "
            f"{TRAIN_STEPS_FLAG} would change it")
  return Check(False, reason, m.NO_CONTEXT, SHORT, verdict, advice)


def _advice_wide(mode: str, examples: int, users: str) -> str:
  """Too few examples to tell the lift from noise: more eval data narrows the interval."""
  return (f"with {examples} {mode} eval examples{users} the interval is wide: more days of log, "
          f"a longer {EVAL_DAYS_FLAG}, or more {TRAIN_STEPS_FLAG} would change it")


def _advice_below(mode: str, baseline: str) -> str:
  """The model loses beyond the noise: a better model, not more eval data, would change it."""
  if mode == m.NO_CONTEXT:
    return (f"without context the model loses to {baseline} beyond the noise: more "
            f"{TRAIN_STEPS_FLAG}, a higher {CONTEXT_DROPOUT_FLAG} (more training examples "
            f"without context) or more days of train data would change it")
  behind = f": {_AFTER_PINNED[baseline]}" if baseline in _AFTER_PINNED else ""
  return (f"the model loses to {baseline} beyond the noise{behind}: more {TRAIN_STEPS_FLAG} or "
          f"more days of train data would change it, not a longer {EVAL_DAYS_FLAG}")


def _advice_empty(mode: str) -> str:
  """Nothing to compare on: the eval split must hold examples of this mode."""
  return (f"the eval split has no {mode} example: more days of log or a longer "
          f"{EVAL_DAYS_FLAG} would change it")


def _number(value: Optional[float]) -> float:
  """A lift or bound as a float: summary.json writes an unbounded one (+inf) as null."""
  return math.inf if value is None else float(value)


def parameters(config: EvaluatorConfig) -> Dict[str, Any]:
  """The rule's parameters, as summary.json's "blessing" records them beside the reasons."""
  return {"rule": m.TARGET, **{name: getattr(config, name) for name in THRESHOLDS}}


def why_not(summary: Mapping[str, Any]) -> Optional[str]:
  """One line for people: which check refused the model and what would change it (None when
  blessed). The checks rerun on the summary with its recorded thresholds; the most decisive
  failure is named (FAILURES order, then the lowest lower bound), the others counted."""
  if summary.get("blessed"):
    return None
  blessing = summary.get("blessing") or {}
  config = EvaluatorConfig(**{name: blessing[name] for name in THRESHOLDS if name in blessing})
  metrics = summary.get("metrics") or {}
  complete = all(m.NO_CONTEXT in metrics.get(x, {}) for x in (m.CONTEXTUAL, m.HISTORY_ONLY))
  failed = [check for check in checks(metrics, summary.get("lifts") or {}, config)
            if not check.passed] if complete else []
  if not failed:  # a partial or older summary: quote its first failed reason
    recorded = [r for r in blessing.get("reasons", []) if r.startswith("FAIL: ")]
    return ("not blessed: " + recorded[0][len("FAIL: "):] if recorded else
            "not blessed, but summary.json records no failed check: rerun the evaluation")
  failed.sort(key=lambda check: (FAILURES.index(check.failure), check.gap))
  others = len(failed) - 1
  more = (f"; {others} more check{'s fail' if others > 1 else ' fails'} (see report.md)"
          if others else "")
  return f"not blessed: {failed[0].verdict}; {failed[0].advice}{more}"
