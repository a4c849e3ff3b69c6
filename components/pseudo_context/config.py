"""Typed parameters of PseudoContextAugmenter: when real context is kept, how far pseudo-sessions
stray from the label, and the shape of the logged sessions they imitate."""
import dataclasses
import math
from typing import Optional, Sequence, Tuple

from ctxrec.components.json_config import JsonConfig
from ctxrec.transform import features as f

from ctxrec.trainer.config import CONTEXT_MODES as MODES  # categories only, or also the item id
from ctxrec.trainer.config import DEFAULT_CONTEXT_MODE, MODE_ITEM  # pylint: disable=unused-import
# Used for the fitted parameters left to fitting when train has too few logged sessions to fit
# them from: one view, the label-derived one (the single-view context of before sessions).
FALLBACK_P_SUBSTITUTE = 0.3
FALLBACK_P_OTHER_CATEGORY = 0.1
FALLBACK_SESSION_LENGTHS = (1.0,)  # always one view
FALLBACK_LABEL_POSITIONS = (1.0,)  # ... the label-derived one, viewed now
FALLBACK_P_ON_CATEGORY = 0.5  # moot with one view
FALLBACK_VIEW_GAP_SECONDS = 60.0
MIN_REAL_CONTEXTS_TO_FIT = 50
_WEIGHTS = ("session_lengths", "label_positions")  # per length 1.. / per position 0..


def _weights_problem(weights: Sequence[float], most: int) -> Optional[str]:
  """What is wrong with a tuple of draw weights, or None."""
  if not 1 <= len(weights) <= most:
    return f"has {len(weights)} entries"
  if not all(math.isfinite(w) and w >= 0.0 for w in weights):
    return "has a negative or non-finite weight"
  return None if sum(weights) > 0.0 else "has no positive weight"


@dataclasses.dataclass(frozen=True)
class PseudoContextConfig(JsonConfig):
  """How train examples get a context: their logged session where it exists, else a pseudo-session
  around a view derived from the positive label. None for a fitted parameter: fitted from the
  logged sessions of the train split (written to augmentation.json)."""
  use_real_context: bool = True  # keep a train example's logged session
  rate: float = 1.0  # share of the other train examples that get a pseudo-session
  p_other_category: Optional[float] = None  # chance the label view is from another category
  p_substitute: Optional[float] = None  # chance the label gives way to a popular sibling
  # Weights of the session lengths 1, 2, ... (at most session_views entries).
  session_lengths: Optional[Tuple[float, ...]] = None
  # Weights of the label-derived view's positions 0, 1, ... (0 = viewed now).
  label_positions: Optional[Tuple[float, ...]] = None
  p_on_category: Optional[float] = None  # chance another view is on the label's primary category
  view_gap_seconds: Optional[float] = None  # median gap between consecutive views (and request)
  gap_jitter: float = 1.0  # std-dev of the log-normal noise on each gap
  confidence_jitter: float = 0.2  # std-dev of the log-normal noise on each confidence
  p_drop_secondary: float = 0.3  # chance each secondary category is dropped
  session_views: int = f.DEFAULT_SESSION_VIEWS  # views per session, as the examples keep them
  mode: str = DEFAULT_CONTEXT_MODE  # the Trainer's context_mode
  seed: int = 0

  def __post_init__(self):
    if isinstance(self.session_views, bool) or not isinstance(self.session_views, int) or (
        self.session_views < 1):
      raise ValueError(f"session_views must be an integer >= 1 (the Trainer's session_views), "
                       f"got {self.session_views!r}")
    for name in _WEIGHTS:
      self._check_weights(name)
    for name in ("rate", "p_other_category", "p_substitute", "p_on_category",
                 "p_drop_secondary"):
      value = getattr(self, name)
      if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} is a probability: set it within [0, 1], got {value}")
    for name in ("confidence_jitter", "gap_jitter"):
      value = getattr(self, name)
      if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(
            f"{name} is a standard deviation: set it to a finite value >= 0, got {value}")
    gap = self.view_gap_seconds
    if gap is not None and not (math.isfinite(gap) and gap > 0.0):
      raise ValueError(f"view_gap_seconds must be a finite number of seconds > 0 (or None to "
                       f"fit it), got {gap}")
    if self.mode not in MODES:
      raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
    if isinstance(self.seed, bool) or not isinstance(self.seed, int):
      raise ValueError(f"seed must be an integer, got {self.seed!r}")

  def _check_weights(self, name: str) -> None:
    """Validates one tuple of draw weights, stored as a tuple (JSON gives a list)."""
    value = getattr(self, name)
    if value is None:
      return
    weights = tuple(float(w) for w in value)
    problem = _weights_problem(weights, self.session_views)
    if problem:
      raise ValueError(
          f"{name} {problem}: give 1 to session_views ({self.session_views}) non-negative "
          f"weights with a positive sum, or None to fit them, got {value!r}")
    object.__setattr__(self, name, weights)

  @property
  def fitted(self) -> bool:
    """Whether every fitted parameter is set (nothing left to fit)."""
    return all(getattr(self, name) is not None for name in FITTED)


# The parameters a config may leave to fitting (None).
FITTED = ("p_other_category", "p_substitute", "session_lengths", "label_positions",
          "p_on_category", "view_gap_seconds")
FALLBACKS = {"p_other_category": FALLBACK_P_OTHER_CATEGORY,
             "p_substitute": FALLBACK_P_SUBSTITUTE, "session_lengths": FALLBACK_SESSION_LENGTHS,
             "label_positions": FALLBACK_LABEL_POSITIONS, "p_on_category": FALLBACK_P_ON_CATEGORY,
             "view_gap_seconds": FALLBACK_VIEW_GAP_SECONDS}
