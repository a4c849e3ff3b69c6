"""`ctxrec serve`'s options in one typed object, with their defaults written once: the CLI's
flags read them from here (this module imports neither TensorFlow nor the web stack)."""
import dataclasses
import ipaddress
import os
import urllib.parse
from typing import Optional

TF_SERVING_FORMS = "grpc://HOST:PORT or http://HOST:PORT"
MAX_BODY_BYTES = 1 << 20


def is_loopback(host: str) -> bool:
  """Whether binding `host` accepts connections from this machine only."""
  if host == "localhost":
    return True
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return False


@dataclasses.dataclass(frozen=True)
class ServeConfig:
  """Where the release lives, how to reach its parts, and who may ask."""
  serving_dir: str  # OUT/serving: <model name>/<version>/ and index/<version>/
  store_uri: str
  tf_serving: Optional[str] = None  # grpc://host:port | http://host:port; None: in-process
  host: str = "127.0.0.1"
  port: int = 8080
  head_timeout_ms: float = 100.0
  store_timeout_ms: float = 250.0
  reload_seconds: float = 30.0
  index_threads: int = 1
  breaker_failures: int = 3
  breaker_reset_seconds: float = 5.0
  max_body_bytes: int = MAX_BODY_BYTES
  # Requests answered at once, and TensorFlow's threads per head call: a request is a few
  # milliseconds of GIL-bound Python around native calls, so a few threads serve more than
  # many (the default 40 threads queue on the GIL) and one TF thread per call spares the cores.
  request_threads: int = 4
  tf_threads: int = 1
  workers: int = 1  # processes, each with its own copy of the release (Python's GIL is per process)
  # A file holding the bearer token every request but /healthz and /readyz must carry; None:
  # no authentication (fit for loopback only).
  auth_token_file: Optional[str] = None
  # /docs and /openapi.json; None: on only when bound to loopback.
  docs: Optional[bool] = None

  def __post_init__(self):
    if self.tf_serving is not None:
      scheme = urllib.parse.urlparse(self.tf_serving).scheme
      if scheme not in ("grpc", "http", "https"):
        raise ValueError(f"--tf-serving {self.tf_serving!r}: use {TF_SERVING_FORMS}")
    if self.auth_token_file is not None and not os.path.isfile(self.auth_token_file):
      raise ValueError(f"--auth-token-file {self.auth_token_file}: no such file; write the "
                       f"bearer token into it (e.g. from a Kubernetes Secret)")

  @property
  def docs_enabled(self) -> bool:
    return self.docs if self.docs is not None else is_loopback(self.host)
