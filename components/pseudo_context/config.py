"""Typed parameters of PseudoContextAugmenter: how often and how far pseudo-context strays."""
import dataclasses
import math

MODE_CATEGORIES = "categories"  # context carries categories only (context_item_id stays empty)
MODE_ITEM = "item"  # context also carries the (possibly substituted) item id
MODES = (MODE_CATEGORIES, MODE_ITEM)


@dataclasses.dataclass(frozen=True)
class PseudoContextConfig:
  """How train examples get a context derived from their positive label."""
  rate: float = 1.0  # share of train examples that get pseudo-context
  p_substitute: float = 0.3  # chance the label is replaced by a popular item of its category
  confidence_jitter: float = 0.2  # std-dev of the log-normal noise on each confidence
  p_drop_secondary: float = 0.3  # chance each secondary category is dropped
  mode: str = MODE_CATEGORIES
  seed: int = 0

  def __post_init__(self):
    for name in ("rate", "p_substitute", "p_drop_secondary"):
      value = getattr(self, name)
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} is a probability: set it within [0, 1], got {value}")
    if not (math.isfinite(self.confidence_jitter) and self.confidence_jitter >= 0.0):
      raise ValueError(
          f"confidence_jitter is a standard deviation: set it to a finite value >= 0, "
          f"got {self.confidence_jitter}")
    if self.mode not in MODES:
      raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
    if isinstance(self.seed, bool) or not isinstance(self.seed, int):
      raise ValueError(f"seed must be an integer, got {self.seed!r}")
