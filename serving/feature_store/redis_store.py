"""The networked StateStore: Redis, one hash of states per version, an atomic pointer flip.

Keys (PREFIX defaults to `ctxrec`; the braces are a Redis Cluster hash tag, so a version's
states and record live on one shard and a batch read is one round trip to one node):

  PREFIX:current                    string: the current version, e.g. `1767225600@2026-03-01`
  PREFIX:versions                   sorted set: every version, scored by its start time
  PREFIX:version:{VERSION}          hash: model_version, serving_date, dimension, rows,
                                    complete, created, published, cold_start (raw float32)
  PREFIX:states:{VERSION}           hash: user_id -> raw little-endian float32 state

Writes are pipelined in batches; completing a version and moving `current` is one MULTI/EXEC
transaction. Layout after Feast's Redis online store (entity hash per feature view), without
its protobuf values.
"""
import os
import time
import urllib.parse
from typing import Dict, List, Optional, Sequence, Tuple

import redis

from ctxrec.serving.feature_store.store import StateStore, StateStoreError, StatesVersion
from ctxrec.serving.feature_store.store import VersionInfo, valid_records

# The password of a URI without one (redis://host:port/db), so that it is never written in a
# command line, a config or a log: e.g. from a Kubernetes Secret.
PASSWORD_VARIABLE = "CTXREC_REDIS_PASSWORD"
DEFAULT_PREFIX = "ctxrec"
_CONNECT_TIMEOUT_SECONDS = 3.0
_SOCKET_TIMEOUT_SECONDS = 30.0


class RedisStateStore(StateStore):
  """States in the Redis database at `redis://[:password@]host:port/db[?prefix=P]`; without a
  password in the URI, the one in $CTXREC_REDIS_PASSWORD, if set."""

  def __init__(self, uri: str, timeout_s: Optional[float] = None):
    """`timeout_s` bounds every read and write (default 30 s: bulk publishing)."""
    super().__init__(uri)
    parsed = urllib.parse.urlparse(uri)
    self.prefix = urllib.parse.parse_qs(parsed.query).get("prefix", [DEFAULT_PREFIX])[0]
    try:
      self._redis = redis.Redis.from_url(
          parsed._replace(query="").geturl(), socket_connect_timeout=_CONNECT_TIMEOUT_SECONDS,
          socket_timeout=timeout_s or _SOCKET_TIMEOUT_SECONDS,
          password=None if parsed.password else os.environ.get(PASSWORD_VARIABLE) or None)
      self._redis.ping()
    except (redis.exceptions.RedisError, ValueError) as exc:
      raise StateStoreError(f"{self.uri}: cannot reach Redis ({exc}); start redis-server there "
                            f"or pass another --store") from exc

  def _key(self, kind: str, version: Optional[StatesVersion] = None) -> str:
    return f"{self.prefix}:{kind}" + (f":{{{version}}}" if version else "")

  @staticmethod
  def _info_from_hash(fields: Dict[bytes, bytes]) -> VersionInfo:
    text = {k.decode(): v for k, v in fields.items() if k != b"cold_start"}
    published = text.get("published", b"").decode()
    return VersionInfo(
        StatesVersion(text["model_version"].decode(), text["serving_date"].decode()),
        int(text["dimension"]), int(text["rows"]), text["complete"] == b"1",
        float(text["created"]), float(published) if published else None)

  def info(self, version: StatesVersion) -> Optional[VersionInfo]:
    fields = self._redis.hgetall(self._key("version", version))
    return self._info_from_hash(fields) if fields else None

  def versions(self) -> List[VersionInfo]:
    names = self._redis.zrevrange(self._key("versions"), 0, -1)
    return valid_records(names, lambda name: self.info(StatesVersion.parse(name.decode())),
                         self.uri)

  def current(self) -> Optional[StatesVersion]:
    value = self._redis.get(self._key("current"))
    return StatesVersion.parse(value.decode()) if value else None

  def _start(self, version: StatesVersion, dimension: int, cold_start: bytes) -> None:
    created = time.time()
    with self._redis.pipeline(transaction=True) as pipe:
      pipe.unlink(self._key("states", version), self._key("version", version))
      pipe.hset(self._key("version", version), mapping={
          "model_version": version.model_version, "serving_date": version.serving_date,
          "dimension": dimension, "rows": 0, "complete": 0, "created": created,
          "published": "", "cold_start": cold_start})
      pipe.zadd(self._key("versions"), {str(version): created})
      pipe.execute()

  def _write(self, version: StatesVersion, user_ids: Sequence[str],
             blobs: Sequence[bytes]) -> None:
    with self._redis.pipeline(transaction=False) as pipe:
      pipe.hset(self._key("states", version), mapping=dict(zip(user_ids, blobs)))
      pipe.hincrby(self._key("version", version), "rows", len(user_ids))
      pipe.execute()

  def _count(self, version: StatesVersion) -> int:
    return int(self._redis.hlen(self._key("states", version)))

  def _complete_and_flip(self, version: StatesVersion, rows: int) -> None:
    with self._redis.pipeline(transaction=True) as pipe:
      pipe.hset(self._key("version", version),
                mapping={"complete": 1, "rows": rows, "published": time.time()})
      pipe.set(self._key("current"), str(version))
      pipe.execute()

  def _flip(self, version: StatesVersion) -> None:
    self._redis.set(self._key("current"), str(version))

  def _drop(self, version: StatesVersion) -> None:
    with self._redis.pipeline(transaction=True) as pipe:
      pipe.unlink(self._key("states", version), self._key("version", version))
      pipe.zrem(self._key("versions"), str(version))
      pipe.execute()

  def _read(self, version: StatesVersion,
            user_ids: Sequence[str]) -> Optional[Tuple[int, List[Optional[bytes]]]]:
    with self._redis.pipeline(transaction=False) as pipe:
      pipe.hmget(self._key("version", version), "complete", "dimension")
      if user_ids:
        pipe.hmget(self._key("states", version), list(user_ids))
      replies = pipe.execute()
    complete, dimension = replies[0]
    if complete != b"1":
      return None
    return int(dimension), (replies[1] if user_ids else [])

  def _read_cold_start(self, version: StatesVersion) -> Optional[Tuple[int, bytes]]:
    complete, dimension, cold_start = self._redis.hmget(
        self._key("version", version), "complete", "dimension", "cold_start")
    return (int(dimension), cold_start) if complete == b"1" else None

  def close(self) -> None:
    self._redis.close()
