"""Reading events in Beam: Parquet and CSV give the same events, and the same per-user
conversions (grouped per Arrow batch on Parquet, row by row on CSV)."""
import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from ctxrec.components import events_io

T0 = 1767225600
EVENTS = [("u1", "a", "view", T0), ("u1", "a", "conversion", T0 + 5),
          ("u2", "b", "conversion", T0 + 100), ("u2", "c", "conversion", T0 + 200),
          ("u3", "b", "purchase", T0 + 1)]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_event_is_read_keyed_by_user(write_tables, fmt):
  path = f"{write_tables(EVENTS, fmt=fmt)}/events.{fmt}"
  expected = [(u, (t, kind, i)) for u, i, kind, t in EVENTS]
  with beam.Pipeline() as pipeline:
    events = pipeline | events_io.ReadEvents(path)  # pylint: disable=no-value-for-parameter
    assert_that(events, equal_to(expected))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_user_conversions_are_the_catalogued_conversions_before_the_bound(write_tables, fmt):
  items = [(i, ["c"], [1.0]) for i in "ab"]  # c is not in the catalog
  data = write_tables(EVENTS, items=items, fmt=fmt)
  with beam.Pipeline() as pipeline:
    conversions = (pipeline
                   | events_io.ReadUserConversions(  # pylint: disable=no-value-for-parameter
                       f"{data}/events.{fmt}", T0 + 300, f"{data}/items.{fmt}")
                   | beam.CombinePerKey(lambda lists: sorted(c for l in lists for c in l)))
    assert_that(conversions, equal_to([("u1", [(T0 + 5, "a")]), ("u2", [(T0 + 100, "b")])]))
