"""Typed parameters of StatePublisher (the store URI is a separate runtime value)."""
import dataclasses

from ctxrec.components.json_config import JsonConfig
from ctxrec.serving.feature_store import DEFAULT_KEEP_VERSIONS


@dataclasses.dataclass(frozen=True)
class StatePublisherConfig(JsonConfig):
  """How states are loaded into the store and how many versions it keeps."""
  keep_versions: int = DEFAULT_KEEP_VERSIONS  # older versions are deleted after the flip
  batch_size: int = 2000  # states per write (one SQLite transaction, one Redis pipeline)

  def __post_init__(self):
    if self.keep_versions < 1:
      raise ValueError(f"keep_versions must be >= 1 (the current version), got "
                       f"{self.keep_versions}")
    if self.batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
