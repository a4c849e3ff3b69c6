"""Assembles the service from its configuration and runs it (uvicorn), in the foreground for
`ctxrec serve` or in a background thread for `make run`, tests and benchmarks."""
import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
import urllib.parse
from typing import Iterator, Optional, Tuple

import uvicorn

from ctxrec.serving import loopback
from ctxrec.serving.head.circuit_breaker import CircuitBreaker
from ctxrec.serving.head.grpc_head import GrpcHead
from ctxrec.serving.head.head import ContextHead
from ctxrec.serving.head.rest_head import RestHead
from ctxrec.serving.service.app import create_app
from ctxrec.serving.service.metrics import ServiceMetrics
from ctxrec.serving.service.release import ReleaseLoader, ReleaseManager
from ctxrec.serving.service.retrieval import RetrievalService
from ctxrec.serving.service.serve_config import ServeConfig
from ctxrec.serving.tf_serving.model_config import MODEL_NAME

_CONFIG_VARIABLE = "CTXREC_SERVE_CONFIG"  # the config of `serve`, for its worker processes


def remote_head_factory(config: ServeConfig):
  """model version -> a TF Serving head pinned to it, or None to serve in-process only."""
  if config.tf_serving is None:
    return None
  parsed = urllib.parse.urlparse(config.tf_serving)
  timeout = config.head_timeout_ms / 1000.0

  def make(version: str) -> ContextHead:
    if parsed.scheme == "grpc":
      return GrpcHead(parsed.netloc, MODEL_NAME, version, timeout)
    return RestHead(config.tf_serving, MODEL_NAME, version, timeout)
  return make


@dataclasses.dataclass
class Service:
  """The assembled service: its app, the release manager and metrics."""
  app: object
  manager: ReleaseManager
  metrics: ServiceMetrics
  retrieval: RetrievalService


def build(config: ServeConfig) -> Service:
  """Loads the current release (if one is complete) and wires the app."""
  loader = ReleaseLoader(config.serving_dir, remote_head_factory(config), config.index_threads)
  manager = ReleaseManager(loader, config.store_uri, config.store_timeout_ms / 1000.0)
  metrics = ServiceMetrics()
  manager.on_swap = metrics.swapped
  manager.on_refuse = metrics.refused_release
  manager.refresh()
  retrieval = RetrievalService(manager, CircuitBreaker(config.breaker_failures,
                                                       config.breaker_reset_seconds))
  return Service(create_app(retrieval, metrics, config), manager, metrics, retrieval)


def _start(config: ServeConfig) -> Service:
  """Builds the service and starts watching for releases, in the process that serves."""
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(config.tf_threads)
  tf.config.threading.set_inter_op_parallelism_threads(config.tf_threads)
  service = build(config)
  if service.manager.current is None:
    logging.warning("no complete release yet: /readyz answers 503 until one is published")
  service.manager.start(config.reload_seconds)
  return service


def app_from_environment():
  """uvicorn's app factory in each worker process, from the config `serve` left for it."""
  return _start(ServeConfig(**json.loads(os.environ[_CONFIG_VARIABLE]))).app


def serve(config: ServeConfig) -> None:
  """Runs the service in the foreground until interrupted; logs (one JSON line per request on
  `ctxrec.requests`) go to stderr. With several workers, each process loads the release and
  answers /metrics for itself (scrape each, or run one worker per pod)."""
  options = dict(host=config.host, port=config.port, log_level="warning", access_log=False)
  if config.workers > 1:
    os.environ[_CONFIG_VARIABLE] = json.dumps(dataclasses.asdict(config))
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=config.workers,
                **options)
    return
  service = _start(config)
  try:
    uvicorn.run(service.app, **options)
  finally:
    service.manager.stop()


@contextlib.contextmanager
def running(app, host: str = "127.0.0.1", port: Optional[int] = None,
            timeout_s: float = 30.0) -> Iterator[Tuple[str, uvicorn.Server]]:
  """Runs `app` with uvicorn in a background thread: (base URL, server)."""
  port = port or loopback.free_port()
  server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                         access_log=False))
  thread = threading.Thread(target=server.run, name="ctxrec-serve", daemon=True)
  thread.start()
  deadline = time.monotonic() + timeout_s
  while not server.started:
    if not thread.is_alive() or time.monotonic() > deadline:
      raise RuntimeError(f"the service did not start on {host}:{port}")
    time.sleep(0.02)
  try:
    yield f"http://{host}:{port}", server
  finally:
    server.should_exit = True
    thread.join()
