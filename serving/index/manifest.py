"""The index manifest: what an index directory holds and how well it searches, in JSON."""
import dataclasses
import json
from typing import Dict

from ctxrec import versions

# 2: items.parquet holds each item's categories and confidences; 3: embeddings.npy holds the
# item embeddings, for the exact scoring of boosted categories' items
FORMAT_VERSION = 3


class IndexDirError(ValueError):
  """An index directory is missing, partial, corrupt or belongs to another model version."""


@dataclasses.dataclass(frozen=True)
class IndexManifest:
  """Written last into an index directory: a directory without it is not an index."""
  model_version: str  # the model whose embed_items embedded the catalog
  dimension: int
  items: int
  catalog_fingerprint: str  # sha256 of the embedded items (ids, categories, confidences)
  searcher: Dict[str, object]  # SearcherConfig
  settings: Dict[str, int]  # SearchSettings chosen by tuning
  recall: Dict[str, float]  # recall@10, recall@100 against exact search on real queries
  threshold: float  # the recall@100 the gate asked for
  blessed: bool  # recall@100 >= threshold
  latency_ms: Dict[str, float]  # single query, one thread: p50, p99
  ms_per_query_batched: float
  queries: int
  query_source: str
  built_at: float
  files: Dict[str, int] = dataclasses.field(default_factory=dict)  # relative path -> bytes
  format_version: int = FORMAT_VERSION

  def __post_init__(self):
    versions.index_version(self.model_version, self.catalog_fingerprint)  # data, never a path

  @property
  def index_version(self) -> str:
    return versions.index_version(self.model_version, self.catalog_fingerprint)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str, where: str) -> "IndexManifest":
    try:
      values = json.loads(text)
      manifest = cls(**values)
    except (ValueError, TypeError) as exc:
      raise IndexDirError(f"{where}: unreadable index manifest ({exc}); rebuild the index") from exc
    if manifest.format_version != FORMAT_VERSION:
      raise IndexDirError(f"{where}: index format {manifest.format_version}, this ctxrec reads "
                          f"{FORMAT_VERSION}; rebuild the index")
    return manifest
