"""Reading events in Beam: Parquet and CSV give the same events; the conversions-before filter
(vectorised on Parquet batches, per element on CSV) keeps exactly the conversions before."""
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
def test_only_conversions_before_the_bound_are_kept(write_tables, fmt):
  path = f"{write_tables(EVENTS, fmt=fmt)}/events.{fmt}"
  with beam.Pipeline() as pipeline:
    events = pipeline | events_io.ReadEvents(  # pylint: disable=no-value-for-parameter
        path, conversions_before=T0 + 200)
    assert_that(events, equal_to([("u1", (T0 + 5, "conversion", "a")),
                                  ("u2", (T0 + 100, "conversion", "b"))]))
