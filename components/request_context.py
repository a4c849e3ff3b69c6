"""The request context of an item being viewed: the one definition eval examples and the online
service share, so a served request sees exactly what the evaluation measured.

One retrieval rule rides on it: the item being viewed, when the catalog knows it and the request
does not exclude it, is returned first ("pinned"), ahead of the model's ranking. A user converts
on the item they are looking at more often than on any other, and a model trained on a few
hundred conversions cannot learn that for fifty thousand items; the evaluator measures the
contextual model with the same rule, so its figures are those of the served answers.
"""
import dataclasses
from typing import Collection, Mapping, Optional, Sequence, Tuple

from ctxrec.components.sequence_example_gen.input_tables import Item


@dataclasses.dataclass(frozen=True)
class Context:
  """What the user is looking at now: an item id (may be empty) and its categories."""
  item_ids: Tuple[str, ...] = ()  # the viewed item, or () when only categories are known
  categories: Tuple[str, ...] = ()  # primary (highest confidence) first
  confidences: Tuple[float, ...] = ()

  @property
  def empty(self) -> bool:
    return not self.categories


NO_CONTEXT = Context()


def pinned_item(context: Context, excluded: Collection[str] = ()) -> Optional[str]:
  """The item returned first for this context, if any (see the module docstring)."""
  if context.item_ids and context.item_ids[0] and context.item_ids[0] not in excluded:
    return context.item_ids[0]
  return None


def context_of_item(item_id: str, catalog: Mapping[str, Item]) -> Optional[Context]:
  """The context of viewing `item_id`: the item and its catalog categories, or None when the
  catalog does not know it."""
  item = catalog.get(item_id)
  if item is None:
    return None
  return Context((item_id,), tuple(item.categories), tuple(item.confidences))


def context_of_categories(categories: Sequence[str],
                          confidences: Sequence[float]) -> Context:
  """A context known only by its categories (an item the catalog does not know, a page)."""
  return Context((), tuple(categories), tuple(float(c) for c in confidences))
