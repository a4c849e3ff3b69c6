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


def test_csv_is_read_by_the_checks_reader_bom_crlf_blank_lines_quotes(write_tables):
  data = write_tables(EVENTS, fmt="csv")
  lines = ["user_id,item_id,event_type,timestamp", f"u1,a,view,{T0}", "",
           f"\"u1\",\"a\",conversion,{T0 + 5}", f"\"u,2\nx\",b,conversion,{T0 + 100}", "", ""]
  with open(f"{data}/events.csv", "w", encoding="utf-8", newline="") as out:
    out.write("\ufeff" + "\r\n".join(lines))
  with beam.Pipeline() as pipeline:
    events = pipeline | events_io.ReadEvents(f"{data}/events.csv")  # pylint: disable=no-value-for-parameter
    assert_that(events, equal_to([("u1", (T0, "view", "a")), ("u1", (T0 + 5, "conversion", "a")),
                                  ("u,2\nx", (T0 + 100, "conversion", "b"))]))


def test_integer_ids_and_millisecond_timestamps_read_as_strings_and_seconds(write_tables):
  events = [(7, 70, "view", T0 * 1000 + 999), (7, 70, "conversion", (T0 + 5) * 1000)]
  path = f"{write_tables(events, items=[(70, ['c'], [1.0])])}/events.parquet"
  with beam.Pipeline() as pipeline:
    read = pipeline | events_io.ReadEvents(path, "ms")  # pylint: disable=no-value-for-parameter
    assert_that(read, equal_to([("7", (T0, "view", "70")), ("7", (T0 + 5, "conversion", "70"))]))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_user_conversions_drop_duplicates_and_honour_the_unit(write_tables, fmt):
  events = [("u1", "a", "conversion", T0 * 1000 + 5), ("u1", "a", "conversion", T0 * 1000 + 5),
            ("u1", "b", "conversion", (T0 + 300) * 1000)]
  data = write_tables(events, items=[(i, ["c"], [1.0]) for i in "ab"], fmt=fmt)
  with beam.Pipeline() as pipeline:
    conversions = (pipeline
                   | events_io.ReadUserConversions(  # pylint: disable=no-value-for-parameter
                       f"{data}/events.{fmt}", T0 + 300, f"{data}/items.{fmt}", "ms"))
    assert_that(conversions, equal_to([("u1", [(T0, "a")])]))


def test_distinct_events_keep_first_seen_order_and_count_the_rest():
  events = [(T0, "view", "a"), (T0, "view", "a"), (T0 + 1, "conversion", "a"), (T0, "view", "a")]
  assert events_io.distinct_events(events) == ([(T0, "view", "a"), (T0 + 1, "conversion", "a")], 2)
