"""The HTTP app: /v1/retrieve (single and batch), /healthz, /readyz, /metrics, /docs.

Every client error is a 4xx whose body names the field ({"errors": [{"field", "message"}]});
no response carries a stack trace, and every body is strict JSON (no NaN). With a token
configured, every path but the probes answers 401 without it (auth.py); /docs and /openapi.json
are served on loopback or when asked for.
"""
import contextlib
import dataclasses
import json
import logging
import time
from typing import List, Optional, Sequence

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ctxrec.serving.service import auth
from ctxrec.serving.service.metrics import CONTENT_TYPE, ServiceMetrics
from ctxrec.serving.service.retrieval import NotReady, RequestError, RetrievalService
from ctxrec.serving.service.schemas import BatchRequest, BatchResponse, ErrorResponse
from ctxrec.serving.service.schemas import RetrieveRequest, RetrieveResponse
from ctxrec.serving.service.serve_config import ServeConfig

REQUEST_LOG = logging.getLogger("ctxrec.requests")
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 409, 413, 422, 503)}


def _json(content: dict) -> Response:
  """Strict JSON: a NaN or infinite value is an error here (a 500), never an invalid body."""
  return Response(json.dumps(content, separators=(",", ":"), allow_nan=False),
                  media_type="application/json")


def _errors(status: int, errors: List[dict]) -> JSONResponse:
  return JSONResponse(status_code=status, content={"errors": errors})


def _field(location: Sequence) -> Optional[str]:
  parts = [str(p) for p in location if p != "body"]
  return ".".join(parts) or None


def _views(request: RetrieveRequest) -> int:
  """How many views the request's session gives (0 without context), for the request log."""
  return len(request.context.session()) if request.context is not None else 0


class BodyLimit:
  """Refuses bodies over `max_bytes` with a 413, declared or streamed (ASGI middleware)."""

  def __init__(self, app, max_bytes: int):
    self.app, self.max_bytes = app, max_bytes

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
      return await self.app(scope, receive, send)
    declared = dict(scope["headers"]).get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
      return await _errors(413, [{"field": None, "message": self._message()}])(scope, receive,
                                                                                 send)
    received = 0

    async def limited():
      nonlocal received
      message = await receive()
      received += len(message.get("body", b""))
      if received > self.max_bytes:
        raise HTTPException(413, self._message())
      return message
    return await self.app(scope, limited, send)

  def _message(self) -> str:
    return f"the request body is larger than {self.max_bytes} bytes"


def create_app(service: RetrievalService, metrics: ServiceMetrics,
               config: ServeConfig) -> FastAPI:
  """The app answering from `service`'s current release, `config.request_threads` at a time."""

  @contextlib.asynccontextmanager
  async def lifespan(_):
    anyio.to_thread.current_default_thread_limiter().total_tokens = config.request_threads
    yield

  docs = config.docs_enabled
  app = FastAPI(title="ctxrec retrieval", version="1", lifespan=lifespan,
                docs_url="/docs" if docs else None, redoc_url=None,
                openapi_url="/openapi.json" if docs else None,
                description="Contextual sequential two-tower retrieval: the user's daily state, "
                            "their session (`context.views`, most recent first), the catalog "
                            "index of the same model version.")
  app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
  if config.auth_token_file is not None:  # outermost: nothing is read before the token
    app.add_middleware(auth.BearerAuth, token=auth.read_token(config.auth_token_file),
                       on_refused=metrics.requests.labels("unauthorized").inc)
  _handlers(app, metrics)

  def answer(requests: Sequence[RetrieveRequest]) -> List[dict]:
    started = time.perf_counter()
    responses = service.retrieve(requests)
    metrics.answered(responses[0]["timings_ms"], [r["fallbacks"] for r in responses])
    for request, response in zip(requests, responses):
      REQUEST_LOG.info(json.dumps({
          "event": "retrieve", "user_id": request.user_id, "k": request.k,
          "context": request.context is not None, "views": _views(request),
          "items": len(response["items"]),
          "model_version": response["model_version"],
          "states_version": response["states_version"], "fallbacks": response["fallbacks"],
          "timings_ms": response["timings_ms"], "batch": len(requests),
          "ms": round((time.perf_counter() - started) * 1000, 3)}))
    return responses

  # The answers are built as plain dicts in the RetrieveResponse schema and sent as they are:
  # validating a hundred items again per request costs more than the search.
  @app.post("/v1/retrieve", response_model=RetrieveResponse, responses=_ERRORS)
  def retrieve(request: RetrieveRequest) -> Response:
    """Top-k items for one user and their session (the items they viewed, most recent first);
    the session's items come first ("pinned")."""
    return _json(answer([request])[0])

  @app.post("/v1/retrieve/batch", response_model=BatchResponse, responses=_ERRORS)
  def retrieve_batch(batch: BatchRequest) -> Response:
    """Many requests in one call: one state read, one head call, one batched search."""
    return _json({"responses": answer(batch.requests)})

  @app.get("/healthz")
  async def healthz() -> dict:
    """The process is up (liveness); async, so it never queues behind retrievals."""
    return {"status": "ok"}

  @app.get("/readyz", responses={503: {"model": ErrorResponse}})
  async def readyz():
    """Ready only when a complete release is loaded (readiness); names a refused newer one."""
    release, refused = service.manager.current, service.manager.refused
    if release is None:
      return _errors(503, [{"field": None, "message": "no complete release loaded yet" + (
          f"; refused: {refused.message}" if refused else "")}])
    return {"ready": True, **release.describe(),
            "refused": dataclasses.asdict(refused) if refused else None}

  @app.get("/metrics")
  async def prometheus() -> Response:
    """Prometheus metrics."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)

  return app


def _handlers(app: FastAPI, metrics: ServiceMetrics) -> None:
  """Maps every failure to a JSON body without a stack trace, counted by outcome."""

  @app.exception_handler(RequestValidationError)
  async def invalid(_: Request, exc: RequestValidationError):
    metrics.requests.labels("client_error").inc()
    errors = exc.errors()
    status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
    return _errors(status, [{"field": "body" if e.get("type") == "json_invalid"
                             else _field(e.get("loc", ())), "message": _message(e)}
                            for e in errors])

  @app.exception_handler(RequestError)
  async def refused(_: Request, exc: RequestError):
    metrics.requests.labels("client_error").inc()
    return _errors(exc.status, [{"field": exc.field, "message": str(exc)}])

  @app.exception_handler(NotReady)
  async def not_ready(_: Request, exc: NotReady):
    metrics.requests.labels("not_ready").inc()
    return _errors(503, [{"field": None, "message": str(exc)}])

  @app.exception_handler(HTTPException)
  async def http_error(_: Request, exc: HTTPException):
    if exc.status_code < 500:
      metrics.requests.labels("client_error").inc()
    field = "body" if exc.status_code in (400, 413) else None  # unparsable or too large
    return _errors(exc.status_code, [{"field": field, "message": str(exc.detail)}])

  @app.exception_handler(Exception)
  async def unexpected(request: Request, exc: Exception):
    metrics.requests.labels("error").inc()
    logging.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _errors(500, [{"field": None, "message": "internal error; see the service log"}])


def _message(error: dict) -> str:
  if error.get("type") == "json_invalid":
    where = error.get("loc", ("body", "?"))[-1]
    detail = (error.get("ctx") or {}).get("error", "")
    return f"malformed JSON at character {where}: {detail}".rstrip(": ")
  return str(error.get("msg", "invalid")).removeprefix("Value error, ")

