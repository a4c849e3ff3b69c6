"""The request context, a session of recent views: the one definition eval examples and the
online service share, so a served request sees exactly what the evaluation measured.

One retrieval rule rides on it: the session's viewed items, most recent first, when the catalog
knows them and the request does not exclude them, are returned first ("pinned"), ahead of the
model's ranking. A user converts on an item they just looked at more often than on any other,
and a model trained on a few hundred conversions cannot learn that for fifty thousand items; the
evaluator measures the contextual model with the same rule, so its figures are those of the
served answers.
"""
import dataclasses
from typing import Collection, Mapping, Optional, Sequence, Tuple

import numpy as np

from ctxrec.components.sequence_example_gen.input_tables import Item
from ctxrec.transform import features as f

MAX_REQUEST_VIEWS = 16  # views a request may carry; the model reads its first session_views


@dataclasses.dataclass(frozen=True)
class View:
  """One viewed item: its id ("" when only categories are known), categories (primary first),
  their confidences, and how long before the request it was viewed."""
  item_id: str = ""
  categories: Tuple[str, ...] = ()
  confidences: Tuple[float, ...] = ()
  seconds_ago: int = 0


@dataclasses.dataclass(frozen=True)
class Context:
  """What the user has been looking at: views, most recent first (view 0 is viewed now)."""
  views: Tuple[View, ...] = ()

  @property
  def empty(self) -> bool:
    return not any(view.categories for view in self.views)

  def truncated(self, views: int) -> "Context":
    return Context(self.views[:views])


NO_CONTEXT = Context()


def pinned_items(context: Context, excluded: Collection[str] = (),
                 views: int = f.DEFAULT_SESSION_VIEWS) -> Tuple[str, ...]:
  """The items returned first for this context, in order (see the module docstring): the
  distinct item ids of its first `views` views, most recent first, minus `excluded`."""
  out = []
  for view in context.views[:views]:
    if view.item_id and view.item_id not in excluded and view.item_id not in out:
      out.append(view.item_id)
  return tuple(out)


def view_of_item(item_id: str, catalog: Mapping[str, Item],
                 seconds_ago: int = 0) -> Optional[View]:
  """The view of `item_id` with its catalog categories, or None when the catalog does not
  know it."""
  item = catalog.get(item_id)
  if item is None:
    return None
  return View(item_id, tuple(item.categories), tuple(item.confidences), int(seconds_ago))


def view_of_categories(categories: Sequence[str], confidences: Sequence[float],
                       seconds_ago: int = 0) -> View:
  """A view known only by its categories (an item the catalog does not know, a page)."""
  return View("", tuple(categories), tuple(float(c) for c in confidences), int(seconds_ago))


def context_of_item(item_id: str, catalog: Mapping[str, Item]) -> Optional[Context]:
  """The session of one view of `item_id`, or None when the catalog does not know it."""
  view = view_of_item(item_id, catalog)
  return None if view is None else Context((view,))


def context_arrays(contexts: Sequence[Context], views: int,
                   categories: int) -> Mapping[str, np.ndarray]:
  """The dense context inputs of the model's signatures for a batch: item ids and ages
  [n, views], categories and confidences [n, views, categories], "" / 0 padded, most recent view
  first and each view's primary category first."""
  rows = len(contexts)
  ids = np.full((rows, views), "", dtype=object)
  ages = np.zeros((rows, views), np.int64)
  names = np.full((rows, views, categories), "", dtype=object)
  weights = np.zeros((rows, views, categories), np.float32)
  for row, context in enumerate(contexts):
    for slot, view in enumerate(context.views[:views]):
      ids[row, slot], ages[row, slot] = view.item_id, view.seconds_ago
      width = min(len(view.categories), categories)
      names[row, slot, :width] = view.categories[:width]
      weights[row, slot, :width] = view.confidences[:width]
  return {f.CONTEXT_ITEM_ID: ids, f.CONTEXT_AGE_SECONDS: ages, f.CONTEXT_CATEGORIES: names,
          f.CONTEXT_CONFIDENCES: weights}


def contexts_of_arrays(arrays: Mapping[str, np.ndarray]) -> Tuple[Context, ...]:
  """The contexts of dense context inputs (context_arrays' inverse, padding dropped)."""
  ids, ages = arrays[f.CONTEXT_ITEM_ID], arrays[f.CONTEXT_AGE_SECONDS]
  names, weights = arrays[f.CONTEXT_CATEGORIES], arrays[f.CONTEXT_CONFIDENCES]
  out = []
  for row in range(len(ids)):
    views = []
    for slot in range(ids.shape[1]):
      kept = names[row, slot] != ""
      if not ids[row, slot] and not kept.any():
        break
      views.append(View(str(ids[row, slot]), tuple(names[row, slot][kept]),
                        tuple(float(w) for w in weights[row, slot][kept]),
                        int(ages[row, slot])))
    out.append(Context(tuple(views)))
  return tuple(out)
