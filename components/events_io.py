"""Reads the events table in Beam.

`ReadEvents`: every event as (user_id, (timestamp, event_type, item_id)), for SequenceExampleGen.
`ReadUserConversions`: the conversions on catalogued items before a time, grouped by user, for
the daily states; on Parquet they are filtered and grouped per Arrow batch before any element is
made, since they are a small part of a large log.
"""
from typing import Iterator, List, Mapping, Tuple

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.transform import features as f

Event = Tuple[int, str, str]  # (timestamp, event_type, item_id)
KeyedEvent = Tuple[str, Event]
UserConversions = Tuple[str, List[Tuple[int, str]]]  # (user_id, [(timestamp, item_id)])


def _event_tuple(user_id, item_id, event_type, timestamp) -> KeyedEvent:
  return user_id, (int(float(timestamp)) if isinstance(timestamp, str) else int(timestamp),
                   event_type, item_id)


def _table_rows(table: pa.Table) -> Iterator[KeyedEvent]:
  columns = [table.column(c).to_pylist() for c in f.EVENTS_COLUMNS]
  for user_id, item_id, event_type, timestamp in zip(*columns):
    yield _event_tuple(user_id, item_id, event_type, timestamp)


class _CsvRow(beam.DoFn):
  """Parses one CSV line by the header's column positions."""

  def __init__(self, header: List[str]):
    self._positions = [header.index(c) for c in f.EVENTS_COLUMNS]

  def process(self, line: str):
    import csv  # pylint: disable=g-import-not-at-top
    cells = next(csv.reader([line]))
    yield _event_tuple(*(cells[p] for p in self._positions))


@beam.ptransform_fn
def ReadEvents(pipeline: beam.Pipeline, path: str) -> beam.PCollection:  # pylint: disable=invalid-name
  """Reads events.parquet or events.csv as (user_id, (timestamp, event_type, item_id))."""
  if path.endswith(".parquet"):
    return (pipeline
            | "ReadParquet" >> beam.io.ReadFromParquetBatched(path, columns=list(f.EVENTS_COLUMNS))
            | "Rows" >> beam.FlatMap(_table_rows))
  with tf.io.gfile.GFile(path) as handle:
    header = [c.strip() for c in handle.readline().rstrip("\n").split(",")]
  return (pipeline
          | "ReadCsv" >> beam.io.ReadFromText(path, skip_header_lines=1)
          | "Parse" >> beam.ParDo(_CsvRow(header)))


def is_kept(keyed_event: KeyedEvent, catalog: Mapping) -> bool:
  """An event of a known type on a catalogued item (the others are dropped and counted)."""
  _, (_, event_type, item_id) = keyed_event
  return event_type in f.EVENT_TYPES and item_id in catalog


def _is_conversion_before(keyed_event: KeyedEvent, before: int) -> bool:
  _, (timestamp, event_type, _) = keyed_event
  return event_type == f.EVENT_CONVERSION and timestamp < before


class _CataloguedConversions(beam.DoFn):
  """Conversions before `before` on items of the items table, as (user_id, [(timestamp,
  item_id)]): one element per user of a Parquet batch, or per CSV row."""

  def __init__(self, before: int, items_path: str):
    super().__init__()
    self._before, self._items_path = before, items_path
    self._catalog: Mapping = {}

  def setup(self) -> None:
    self._catalog = input_tables.load_items_once(self._items_path)

  def process(self, element):
    if isinstance(element, pa.Table):
      yield from self._batch(element)
    elif _is_conversion_before(element, self._before) and is_kept(element, self._catalog):
      user_id, (timestamp, _, item_id) = element
      yield user_id, [(timestamp, item_id)]

  def _batch(self, table: pa.Table) -> Iterator[UserConversions]:
    if not pa.types.is_integer(table.column(f.TIMESTAMP).type):  # text timestamps: row by row
      for keyed_event in _table_rows(table):
        yield from self.process(keyed_event)
      return
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
        yield user_id, conversions


@beam.ptransform_fn
def ReadUserConversions(pipeline: beam.Pipeline, path: str, before: int,  # pylint: disable=invalid-name
                        items_path: str) -> beam.PCollection:
  """Conversions on items of the items table before the timestamp `before`, as (user_id,
  [(timestamp, item_id)]); a user may come in several elements. Each worker loads the items
  once (`input_tables.load_items_once`)."""
  if path.endswith(".parquet"):
    events = pipeline | "ReadParquet" >> beam.io.ReadFromParquetBatched(
        path, columns=list(f.EVENTS_COLUMNS))
  else:
    events = pipeline | "ReadEvents" >> ReadEvents(path)  # pylint: disable=no-value-for-parameter
  return events | "Conversions" >> beam.ParDo(_CataloguedConversions(before, items_path))
