"""The request context, a session of views: one definition for eval examples and the online
service, and the pinning rule both answer with."""
import numpy as np

from ctxrec.components import request_context
from ctxrec.components.request_context import Context, NO_CONTEXT, View
from ctxrec.components.sequence_example_gen.input_tables import Item
from ctxrec.transform import features as f

CATALOG = {"i1": Item(("shoes", "sport"), (0.75, 0.25)), "i2": Item(("bags",), (1.0,))}


def test_an_item_resolves_to_its_catalog_categories_primary_first():
  context = request_context.context_of_item("i1", CATALOG)
  assert context == Context((View("i1", ("shoes", "sport"), (0.75, 0.25), 0),))
  assert not context.empty
  assert request_context.view_of_item("i2", CATALOG, 30) == View("i2", ("bags",), (1.0,), 30)


def test_an_unknown_item_resolves_to_nothing():
  assert request_context.context_of_item("i9", CATALOG) is None
  assert request_context.view_of_item("i9", CATALOG) is None


def test_categories_alone_make_a_view_without_an_item():
  view = request_context.view_of_categories(["bags"], [1], 12)
  assert view == View("", ("bags",), (1.0,), 12)
  assert not Context((view,)).empty
  assert NO_CONTEXT.empty and Context((View("i9"),)).empty  # no categories: nothing to read


def _session(*item_ids: str) -> Context:
  return Context(tuple(View(item, ("c",), (1.0,), age) for age, item in enumerate(item_ids)))


def test_pinned_items_are_the_distinct_viewed_items_most_recent_first():
  session = _session("i3", "i1", "i3", "", "i2", "i1")
  assert request_context.pinned_items(session) == ("i3", "i1", "i2")
  assert request_context.pinned_items(session, excluded={"i1"}) == ("i3", "i2")
  assert request_context.pinned_items(session, views=2) == ("i3", "i1")
  assert request_context.pinned_items(session, views=0) == ()
  assert request_context.pinned_items(NO_CONTEXT) == ()


def test_pinned_items_read_the_default_session_width():
  session = _session(*(f"i{n}" for n in range(f.DEFAULT_SESSION_VIEWS + 3)))
  assert len(request_context.pinned_items(session)) == f.DEFAULT_SESSION_VIEWS


def test_context_arrays_are_dense_most_recent_first_and_round_trip():
  session = Context((View("i1", ("shoes", "sport"), (0.75, 0.25), 3),
                     View("", ("bags",), (1.0,), 40)))
  arrays = request_context.context_arrays([session, NO_CONTEXT], views=3, categories=2)
  assert arrays[f.CONTEXT_ITEM_ID].shape == (2, 3)
  assert arrays[f.CONTEXT_AGE_SECONDS].dtype == np.int64
  assert arrays[f.CONTEXT_CATEGORIES].shape == arrays[f.CONTEXT_CONFIDENCES].shape == (2, 3, 2)
  assert list(arrays[f.CONTEXT_ITEM_ID][0]) == ["i1", "", ""]
  assert list(arrays[f.CONTEXT_AGE_SECONDS][0]) == [3, 40, 0]
  assert list(arrays[f.CONTEXT_CATEGORIES][0, 1]) == ["bags", ""]
  assert request_context.contexts_of_arrays(arrays) == (session, NO_CONTEXT)


def test_context_arrays_keep_the_first_views_and_categories():
  wide = Context(tuple(View(f"i{n}", ("a", "b", "c"), (0.5, 0.25, 0.25), n) for n in range(5)))
  arrays = request_context.context_arrays([wide], views=2, categories=2)
  back = request_context.contexts_of_arrays(arrays)[0]
  assert back == Context(tuple(View(f"i{n}", ("a", "b"), (0.5, 0.25), n) for n in range(2)))
  assert wide.truncated(2).views == wide.views[:2]
