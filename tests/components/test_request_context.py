"""The request context: one definition for eval examples and the online service."""
from ctxrec.components import request_context
from ctxrec.components.sequence_example_gen.input_tables import Item

CATALOG = {"i1": Item(("shoes", "sport"), (0.8, 0.2))}


def test_an_item_resolves_to_its_catalog_categories_primary_first():
  context = request_context.context_of_item("i1", CATALOG)
  assert context == request_context.Context(("i1",), ("shoes", "sport"), (0.8, 0.2))
  assert not context.empty


def test_an_unknown_item_resolves_to_nothing():
  assert request_context.context_of_item("i9", CATALOG) is None


def test_categories_alone_make_a_context_without_an_item():
  context = request_context.context_of_categories(["bags"], [1])
  assert context.item_ids == () and context.confidences == (1.0,)
  assert request_context.NO_CONTEXT.empty
