"""Typed parameters of RetrievalEvaluator: the blessing thresholds, the bootstrap, the ceiling."""
import dataclasses

from ctxrec.trainer.config import CONTEXT_MODES, DEFAULT_CONTEXT_MODE


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig:
  """Bless when, with real context, the paired 95% lower bound of the model's relative
  Recall@100 lift over every baseline clears `margin`; without context, the lower bound of its
  lift over popularity clears `no_context_floor_margin` and its Recall@100 keeps
  `no_context_ratio` of the history-only model's (point estimates).

  Margins are relative lifts: 0.0 asks for a lower bound above zero; a negative margin tolerates
  a shortfall (e.g. -0.5: a lower bound above half the baseline's recall suffices).
  `context_mode` is the model's (TrainerConfig.context_mode): the report labels the oracle that
  sees the same context as its ceiling.
  """
  margin: float = 0.0
  no_context_floor_margin: float = -0.1  # non-inferiority: at most 10% below popularity
  no_context_ratio: float = 0.9
  bootstrap_samples: int = 1000
  seed: int = 0
  context_mode: str = DEFAULT_CONTEXT_MODE

  def __post_init__(self):
    for name in ("margin", "no_context_floor_margin"):
      if getattr(self, name) <= -1:
        raise ValueError(f"{name} is a relative lift: set it > -1, got {getattr(self, name)}")
    if not 0 <= self.no_context_ratio:
      raise ValueError(f"no_context_ratio must be >= 0, got {self.no_context_ratio}")
    if self.bootstrap_samples < 1:
      raise ValueError(f"bootstrap_samples must be >= 1, got {self.bootstrap_samples}")
    if self.context_mode not in CONTEXT_MODES:
      raise ValueError(f"context_mode must be one of {CONTEXT_MODES} (the Trainer's), got "
                       f"{self.context_mode!r}")
