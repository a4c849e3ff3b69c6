"""The blessing rule both ways, on hand-made metrics."""
import pytest

from ctxrec.components.retrieval_evaluator import blessing
from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig


def _metrics(contextual_real, contextual_none, history, popularity, context_popularity):
  def row(real, none):
    return {m.REAL_CONTEXT: {"recall@100": real}, m.NO_CONTEXT: {"recall@100": none}}
  return {m.CONTEXTUAL: row(contextual_real, contextual_none),
          m.HISTORY_ONLY: row(history, history), m.POPULARITY: row(popularity, popularity),
          m.CONTEXT_POPULARITY: row(context_popularity, popularity),
          m.ORACLE_CONTEXTUAL: {m.REAL_CONTEXT: {"recall@100": 0.99}}}


def test_blessed_when_every_baseline_is_beaten_and_no_context_holds():
  blessed, reasons = blessing.decide(_metrics(0.8, 0.3, 0.3, 0.2, 0.6), EvaluatorConfig())
  assert blessed and len(reasons) == 4 and all(r.startswith("pass") for r in reasons)


@pytest.mark.parametrize("values,failing", [
    ((0.61, 0.3, 0.3, 0.2, 0.6), "context_popularity"),  # beats it, but not by 2%
    ((0.8, 0.26, 0.3, 0.2, 0.6), "no_context"),  # loses too much without context
    ((0.3, 0.3, 0.3, 0.2, 0.1), "history_only"),
])
def test_not_blessed_names_the_failed_check(values, failing):
  blessed, reasons = blessing.decide(_metrics(*values), EvaluatorConfig())
  assert not blessed
  assert [r for r in reasons if r.startswith("FAIL") and failing in r]


def test_oracles_never_gate_and_margin_is_configurable():
  assert blessing.decide(_metrics(0.65, 0.3, 0.3, 0.2, 0.6), EvaluatorConfig(margin=0.0))[0]
  assert blessing.decide(_metrics(0.5, 0.3, 0.3, 0.2, 0.6), EvaluatorConfig(margin=-0.2))[0]
  with pytest.raises(ValueError, match="margin"):
    EvaluatorConfig(margin=-1.0)
