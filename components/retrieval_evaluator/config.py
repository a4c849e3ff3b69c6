"""Typed parameters of RetrievalEvaluator: the blessing thresholds and the bootstrap."""
import dataclasses


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig:
  """Bless when real-context Recall@100 beats every baseline by `margin` (relative) and
  no-context Recall@100 keeps `no_context_ratio` of the history-only model's.

  A negative margin tolerates a shortfall (e.g. -0.5: half the baseline's recall suffices).
  """
  margin: float = 0.02
  no_context_ratio: float = 0.9
  bootstrap_samples: int = 200
  seed: int = 0

  def __post_init__(self):
    if self.margin <= -1:
      raise ValueError(f"margin is a relative lift: set it > -1, got {self.margin}")
    if not 0 <= self.no_context_ratio:
      raise ValueError(f"no_context_ratio must be >= 0, got {self.no_context_ratio}")
    if self.bootstrap_samples < 1:
      raise ValueError(f"bootstrap_samples must be >= 1, got {self.bootstrap_samples}")
