"""Prometheus metrics of the service: requests by outcome and fallback, stage latencies, release."""
from typing import Optional, Sequence

import prometheus_client as prom

from ctxrec.serving.service.release import Refusal, Release

CONTENT_TYPE = prom.CONTENT_TYPE_LATEST
_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class ServiceMetrics:
  """One registry per service (tests run several in one process)."""

  def __init__(self):
    self.registry = prom.CollectorRegistry()
    self.requests = prom.Counter("ctxrec_requests", "Retrieval requests by outcome "
                                 "(ok, client_error, unauthorized, not_ready, error)", ["outcome"],
                                 registry=self.registry)
    self.fallbacks = prom.Counter("ctxrec_fallbacks", "Answered requests by fallback taken",
                                  ["fallback"], registry=self.registry)
    self.stage_seconds = prom.Histogram("ctxrec_stage_seconds", "Latency of each request "
                                        "stage (state, head, ann, total)", ["stage"],
                                        buckets=_BUCKETS, registry=self.registry)
    self.release = prom.Gauge("ctxrec_release_info", "The release being served (value 1)",
                              ["model_version", "index_version", "states_version"],
                              registry=self.registry)
    self.swaps = prom.Counter("ctxrec_release_swaps", "Releases swapped in",
                              registry=self.registry)
    self.refusals = prom.Counter("ctxrec_release_refusals", "Releases named by the state store "
                                 "and not loaded, by reason (unsafe, incomplete)", ["reason"],
                                 registry=self.registry)
    self.refused = prom.Gauge("ctxrec_release_refused", "1 while the store's current release is "
                              "refused and the previous one is served", registry=self.registry)

  def answered(self, timings_ms: dict, fallbacks: Sequence[Sequence[str]]) -> None:
    self.requests.labels("ok").inc(len(fallbacks))
    for stage, value in timings_ms.items():
      self.stage_seconds.labels(stage).observe(value / 1000.0)
    for names in fallbacks:
      for name in names:
        self.fallbacks.labels(name).inc()

  def swapped(self, release: Release) -> None:
    self.release.clear()
    self.release.labels(release.model_version, release.index_version,
                        str(release.states_version)).set(1)
    self.swaps.inc()

  def refused_release(self, refusal: Optional[Refusal]) -> None:
    if refusal is not None:
      self.refusals.labels(refusal.reason).inc()
    self.refused.set(0 if refusal is None else 1)

  def render(self) -> bytes:
    return prom.generate_latest(self.registry)
