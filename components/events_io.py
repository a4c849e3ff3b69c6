"""Reads the events table in Beam, through the same reader the checks use.

`ReadEvents`: every event as (user_id, (timestamp, event_type, item_id)), for SequenceExampleGen.
`ReadUserConversions`: the conversions on catalogued items before a time, grouped by user, for
the daily states; they are filtered and grouped per Arrow batch before any element is made,
since they are a small part of a large log.

Both read Arrow batches typed by `input_tables.typed` and timestamps through
`input_tables.parse_timestamps` (the checks' own functions): Parquet through Beam's Parquet
source (split by row group); CSV whole, in one DoFn, through `input_tables.iter_tables`
(pyarrow's RFC 4180 reader). A CSV file is not split across workers, since a quoted field may
hold a line break that a byte-range split would cut.
"""
import os
from typing import Iterable, Iterator, List, Mapping, Tuple, TypeVar

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen.input_tables import InputError
from ctxrec.transform import features as f

Event = Tuple[int, str, str]  # (timestamp, event_type, item_id)
KeyedEvent = Tuple[str, Event]
UserConversions = Tuple[str, List[Tuple[int, str]]]  # (user_id, [(timestamp, item_id)])
T = TypeVar("T")


def _csv_tables(path: str, timestamp_unit: str) -> Iterator[pa.Table]:
  for _, table in input_tables.iter_tables(path, f.EVENTS_COLUMNS, timestamp_unit):
    yield table


def _read_tables(pipeline: beam.Pipeline, path: str, timestamp_unit: str) -> beam.PCollection:
  """The events file as typed Arrow tables of the events columns."""
  if input_tables.is_parquet(path):
    return (pipeline
            | "ReadParquet" >> beam.io.ReadFromParquetBatched(path, columns=list(f.EVENTS_COLUMNS))
            | "Typed" >> beam.Map(input_tables.typed, path, timestamp_unit))
  return (pipeline
          | "Path" >> beam.Create([path])
          | "ReadCsv" >> beam.FlatMap(_csv_tables, timestamp_unit))


def with_seconds(table: pa.Table, path: str, timestamp_unit: str) -> pa.Table:
  """The table with its timestamp column as int64 epoch seconds; a timestamp the checks would
  refuse is an InputError (the checks run before any Beam job)."""
  seconds, bad = input_tables.parse_timestamps(table.column(f.TIMESTAMP).to_pandas(),
                                               timestamp_unit)
  if bad.any():
    raise InputError(f"{os.path.basename(path)}: {int(bad.sum())} rows have a timestamp that is "
                     f"not a non-negative integer in column {f.TIMESTAMP}")
  index = table.column_names.index(f.TIMESTAMP)
  return table.set_column(index, f.TIMESTAMP, pa.array(seconds, pa.int64()))


def _keyed_events(table: pa.Table, path: str, timestamp_unit: str) -> Iterator[KeyedEvent]:
  table = with_seconds(table, path, timestamp_unit)
  columns = [table.column(c).to_pylist() for c in f.EVENTS_COLUMNS]
  for user_id, item_id, event_type, timestamp in zip(*columns):
    yield user_id, (timestamp, event_type, item_id)


@beam.ptransform_fn
def ReadEvents(pipeline: beam.Pipeline, path: str,  # pylint: disable=invalid-name
               timestamp_unit: str = "s") -> beam.PCollection:
  """Reads events.parquet or events.csv as (user_id, (timestamp seconds, event_type, item_id))."""
  return (_read_tables(pipeline, path, timestamp_unit)
          | "Rows" >> beam.FlatMap(_keyed_events, path, timestamp_unit))


def is_kept(keyed_event: KeyedEvent, catalog: Mapping) -> bool:
  """An event of a known type on a catalogued item (the others are dropped and counted)."""
  _, (_, event_type, item_id) = keyed_event
  return event_type in f.EVENT_TYPES and item_id in catalog


def distinct_events(events: Iterable[T]) -> Tuple[List[T], int]:
  """A user's events (or conversions) without identical duplicates, in first-seen order, and how
  many were dropped: a row logged twice is one event."""
  events = list(events)
  unique = list(dict.fromkeys(events))
  return unique, len(events) - len(unique)


class _CataloguedConversions(beam.DoFn):
  """Conversions before `before` on items of the items table, as (user_id, [(timestamp,
  item_id)]): one element per user of an Arrow batch."""

  def __init__(self, before: int, items_path: str, path: str, timestamp_unit: str):
    super().__init__()
    self._before, self._items_path = before, items_path
    self._path, self._unit = path, timestamp_unit
    self._catalog: Mapping = {}

  def setup(self) -> None:
    self._catalog = input_tables.load_items_once(self._items_path)

  def process(self, table: pa.Table) -> Iterator[UserConversions]:
    table = with_seconds(table, self._path, self._unit)
    keep = pc.and_(pc.equal(table.column(f.EVENT_TYPE), f.EVENT_CONVERSION),
                   pc.less(table.column(f.TIMESTAMP), self._before))
    grouped = table.filter(pc.fill_null(keep, False)).group_by(f.USER_ID).aggregate(
        [(f.TIMESTAMP, "list"), (f.ITEM_ID, "list")])
    columns = (grouped.column(f.USER_ID).to_pylist(),
               grouped.column(f"{f.TIMESTAMP}_list").to_pylist(),
               grouped.column(f"{f.ITEM_ID}_list").to_pylist())
    for user_id, timestamps, item_ids in zip(*columns):
      conversions = [(t, i) for t, i in zip(timestamps, item_ids) if i in self._catalog]
      if conversions:
        yield user_id, distinct_events(conversions)[0]


@beam.ptransform_fn
def ReadUserConversions(pipeline: beam.Pipeline, path: str, before: int,  # pylint: disable=invalid-name
                        items_path: str, timestamp_unit: str = "s") -> beam.PCollection:
  """Conversions on items of the items table before the timestamp `before` (seconds), as
  (user_id, [(timestamp, item_id)]), without duplicates within an element; a user may come in
  several elements (the consumer drops duplicates across them). Each worker loads the items
  once (`input_tables.load_items_once`)."""
  return (_read_tables(pipeline, path, timestamp_unit)
          | "Conversions" >> beam.ParDo(_CataloguedConversions(before, items_path, path,
                                                               timestamp_unit)))
