"""Typed parameters of PseudoContextAugmenter: when real context is kept and how far pseudo-context
strays from the label."""
import dataclasses
import math
from typing import Optional

from ctxrec.components.json_config import JsonConfig

from ctxrec.trainer.config import CONTEXT_MODES as MODES  # categories only, or also the item id
from ctxrec.trainer.config import DEFAULT_CONTEXT_MODE, MODE_ITEM  # pylint: disable=unused-import
# Used when p_substitute / p_other_category are left to fitting but train has too few real
# contexts to fit them from.
FALLBACK_P_SUBSTITUTE = 0.3
FALLBACK_P_OTHER_CATEGORY = 0.1
MIN_REAL_CONTEXTS_TO_FIT = 50


@dataclasses.dataclass(frozen=True)
class PseudoContextConfig(JsonConfig):
  """How train examples get a context: their logged one where it exists, else one derived from
  the positive label. None for p_substitute or p_other_category: fitted from the real contexts
  of the train split (written to augmentation.json)."""
  use_real_context: bool = True  # keep a train example's logged context
  rate: float = 1.0  # share of the other train examples that get pseudo-context
  p_other_category: Optional[float] = None  # chance the context is from another category
  p_substitute: Optional[float] = None  # chance the label gives way to a popular sibling
  confidence_jitter: float = 0.2  # std-dev of the log-normal noise on each confidence
  p_drop_secondary: float = 0.3  # chance each secondary category is dropped
  mode: str = DEFAULT_CONTEXT_MODE  # the Trainer's context_mode
  seed: int = 0

  def __post_init__(self):
    for name in ("rate", "p_other_category", "p_substitute", "p_drop_secondary"):
      value = getattr(self, name)
      if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} is a probability: set it within [0, 1], got {value}")
    if not (math.isfinite(self.confidence_jitter) and self.confidence_jitter >= 0.0):
      raise ValueError(
          f"confidence_jitter is a standard deviation: set it to a finite value >= 0, "
          f"got {self.confidence_jitter}")
    if self.mode not in MODES:
      raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
    if isinstance(self.seed, bool) or not isinstance(self.seed, int):
      raise ValueError(f"seed must be an integer, got {self.seed!r}")

  @property
  def fitted(self) -> bool:
    """Whether every probability is set (nothing left to fit)."""
    return self.p_other_category is not None and self.p_substitute is not None
