"""An optional bearer token: every request but the probes must carry `Authorization: Bearer
<token>`, compared in constant time; the token comes from a file (a mounted Secret), never a flag
(flags show in `ps` and in the pod spec)."""
import hmac
import json
from typing import Callable, Collection

OPEN_PATHS = ("/healthz", "/readyz")  # the kubelet's probes carry no token


def read_token(path: str) -> bytes:
  """The token in `path` (surrounding whitespace dropped), which must not be empty."""
  with open(path, "rb") as handle:
    token = handle.read().strip()
  if not token:
    raise ValueError(f"--auth-token-file {path}: the file is empty; write the bearer token "
                     f"into it")
  return token


class BearerAuth:
  """Answers 401 to a request without the token (ASGI middleware); `on_refused` counts them."""

  def __init__(self, app, token: bytes, on_refused: Callable[[], None] = lambda: None,
               open_paths: Collection[str] = OPEN_PATHS):
    self.app, self.on_refused, self.open_paths = app, on_refused, frozenset(open_paths)
    self._expected = b"Bearer " + token

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http" or scope["path"] in self.open_paths:
      return await self.app(scope, receive, send)
    given = dict(scope["headers"]).get(b"authorization", b"")
    if hmac.compare_digest(given, self._expected):
      return await self.app(scope, receive, send)
    self.on_refused()
    message = ("missing bearer token: send 'Authorization: Bearer <token>'" if not given
               else "wrong bearer token")
    body = json.dumps({"errors": [{"field": "Authorization", "message": message}]}).encode()
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer realm="ctxrec"')]})
    await send({"type": "http.response.body", "body": body})
