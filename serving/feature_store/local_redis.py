"""A throwaway `redis-server` on a free loopback port, for tests, benchmarks and laptop demos."""
import shutil
import subprocess
import tempfile
import time
from typing import Optional

import redis

from ctxrec.serving import loopback
from ctxrec.serving.feature_store.store import StateStoreError

_START_TIMEOUT_SECONDS = 10.0


class LocalRedis:
  """Starts redis-server without persistence on 127.0.0.1; `stop()` (or `with`) ends it."""

  def __init__(self, executable: str = "redis-server", password: Optional[str] = None):
    """`password`: the server asks for it (requirepass); `uri` does not carry it."""
    binary = shutil.which(executable)
    if binary is None:
      raise StateStoreError(f"{executable} not found on PATH; `make setup` installs it (Debian "
                            f"package redis-server)")
    self.port = loopback.free_port()
    self._dir = tempfile.TemporaryDirectory(prefix="ctxrec-redis-")
    self._process: Optional[subprocess.Popen] = subprocess.Popen(
        [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", self._dir.name, "--loglevel", "warning",
         *(["--requirepass", password] if password else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    self._wait_until_ready(password)

  @property
  def uri(self) -> str:
    return f"redis://127.0.0.1:{self.port}/0"

  def _wait_until_ready(self, password: Optional[str]) -> None:
    client = redis.Redis(port=self.port, password=password, socket_connect_timeout=0.5)
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while True:
      if self._process.poll() is not None:
        error = self._process.stderr.read().decode(errors="replace")
        raise StateStoreError(f"redis-server on port {self.port} exited: {error.strip()}")
      try:
        client.ping()
        client.close()
        return
      except redis.exceptions.ConnectionError:
        if time.monotonic() > deadline:
          self.stop()
          raise StateStoreError(f"redis-server on port {self.port} did not answer within "
                                f"{_START_TIMEOUT_SECONDS:.0f}s") from None
        time.sleep(0.05)

  def stop(self) -> None:
    if self._process is not None:
      self._process.terminate()
      self._process.wait(timeout=10)
      self._process.stderr.close()
      self._process = None
      self._dir.cleanup()

  def __enter__(self) -> "LocalRedis":
    return self

  def __exit__(self, *exc) -> None:
    self.stop()
