"""A circuit breaker: after repeated failures of a remote dependency, stop calling it for a
while, so a down TF Serving costs one timeout per probe, not one per request."""
import threading
import time
from typing import Callable


class CircuitBreaker:
  """Closed: calls pass. `failures` failures in a row open it for `reset_after_s`; then one
  probe passes (half open), and its outcome closes or reopens the circuit."""

  def __init__(self, failures: int = 3, reset_after_s: float = 5.0,
               clock: Callable[[], float] = time.monotonic):
    if failures < 1 or reset_after_s <= 0:
      raise ValueError(f"CircuitBreaker needs failures >= 1 and reset_after_s > 0, got "
                       f"{failures}, {reset_after_s}")
    self.failures, self.reset_after_s, self._clock = failures, reset_after_s, clock
    self._lock = threading.Lock()
    self._failed = 0
    self._opened_at = None
    self._probing = False

  @property
  def is_open(self) -> bool:
    with self._lock:
      return self._opened_at is not None

  def allow(self) -> bool:
    """Whether to call the dependency now."""
    with self._lock:
      if self._opened_at is None:
        return True
      if self._probing or self._clock() - self._opened_at < self.reset_after_s:
        return False
      self._probing = True
      return True

  def succeeded(self) -> None:
    with self._lock:
      self._failed, self._opened_at, self._probing = 0, None, False

  def failed(self) -> None:
    with self._lock:
      self._failed += 1
      if self._probing or self._failed >= self.failures:
        self._opened_at, self._probing = self._clock(), False
