"""Typed parameters of IndexBuilder: the recall gate, the queries it is measured on, and
optional overrides of the searcher ScaNN's guidance picks."""
import dataclasses
from typing import Optional

from ctxrec.components.json_config import JsonConfig
from ctxrec.serving.index import searcher_config as sc
from ctxrec.serving.index.build import BuildSpec


@dataclasses.dataclass(frozen=True)
class IndexBuilderConfig(JsonConfig):
  """The gate (recall@100 against exact search) and how the index is built."""
  recall_threshold: float = 0.95
  num_queries: int = 1000  # real user embeddings the recall is measured on
  brute_force_below: int = 20_000
  tree_above: int = 100_000
  searcher_kind: str = ""  # override: brute_force, ah or tree_ah ("" follows the catalog size)
  num_leaves: int = 0  # override for tree_ah (0: about sqrt(items))
  leaves_to_search: int = 0  # fixed search settings instead of tuning, when either is set
  reorder: int = 0
  seed: int = 0

  def __post_init__(self):
    if self.num_queries < 1:
      raise ValueError(f"num_queries must be >= 1, got {self.num_queries}")
    self.build_spec(items=1)  # validates the searcher override and the threshold

  def build_spec(self, items: int) -> BuildSpec:
    """The BuildSpec for a catalog of `items` items."""
    searcher: Optional[sc.SearcherConfig] = None
    if self.searcher_kind:
      leaves = self.num_leaves or sc.default_num_leaves(items)
      searcher = sc.SearcherConfig(kind=self.searcher_kind,
                                   num_leaves=leaves if self.searcher_kind == sc.TREE_AH else 0)
    settings = (sc.SearchSettings(self.leaves_to_search, self.reorder)
                if self.leaves_to_search or self.reorder else None)
    return BuildSpec(recall_threshold=self.recall_threshold, searcher=searcher,
                     settings=settings, brute_force_below=self.brute_force_below,
                     tree_above=self.tree_above)
