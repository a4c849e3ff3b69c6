"""The blessing rule: context must pay off with context and must not hurt without it."""
from typing import Dict, List, Tuple

from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig

TARGET = "recall@100"


def decide(metrics: Dict, config: EvaluatorConfig) -> Tuple[bool, List[str]]:
  """Returns (blessed, one reason per check) from the summary's metrics dict."""
  model = metrics[m.CONTEXTUAL]
  reasons, blessed = [], True
  for baseline in m.BASELINE_METHODS:
    if baseline not in metrics:
      continue
    ours = model[m.REAL_CONTEXT][TARGET]
    theirs = metrics[baseline][m.REAL_CONTEXT][TARGET]
    passed = ours > theirs * (1 + config.margin)
    blessed &= passed
    reasons.append(f"{'pass' if passed else 'FAIL'}: real_context {TARGET} {ours:.4f} vs "
                   f"{baseline} {theirs:.4f} x (1 + margin {config.margin})")
  ours = model[m.NO_CONTEXT][TARGET]
  theirs = metrics[m.HISTORY_ONLY][m.NO_CONTEXT][TARGET]
  passed = ours >= config.no_context_ratio * theirs
  blessed &= passed
  reasons.append(f"{'pass' if passed else 'FAIL'}: no_context {TARGET} {ours:.4f} vs "
                 f"{config.no_context_ratio} x history_only {theirs:.4f}")
  return bool(blessed), reasons
