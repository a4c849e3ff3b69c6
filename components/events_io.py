"""Reads the events table in Beam as (user_id, (timestamp, event_type, item_id)) elements.

Shared by SequenceExampleGen (every event) and HistoryStateInferrer (only conversions before
the serving day, filtered per Arrow batch before any element is made, since they are a small
part of a large log).
"""
from typing import Iterator, List, Mapping, Optional, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from ctxrec.transform import features as f

Event = Tuple[int, str, str]  # (timestamp, event_type, item_id)
KeyedEvent = Tuple[str, Event]


def _event_tuple(user_id, item_id, event_type, timestamp) -> KeyedEvent:
  return user_id, (int(float(timestamp)) if isinstance(timestamp, str) else int(timestamp),
                   event_type, item_id)


def _conversions_before(table: pa.Table, before: int) -> pa.Table:
  """The table's conversion rows with an integer timestamp before `before` (vectorised)."""
  timestamps = table.column(f.TIMESTAMP)
  if not pa.types.is_integer(timestamps.type):
    return table  # text timestamps: left to the per-element filter
  mask = pc.and_(pc.equal(table.column(f.EVENT_TYPE), f.EVENT_CONVERSION),
                 pc.less(timestamps, before))
  return table.filter(pc.fill_null(mask, False))


def _table_rows(table: pa.Table, conversions_before: Optional[int]) -> Iterator[KeyedEvent]:
  if conversions_before is not None:
    table = _conversions_before(table, conversions_before)
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


def is_conversion_before(keyed_event: KeyedEvent, before: int) -> bool:
  _, (timestamp, event_type, _) = keyed_event
  return event_type == f.EVENT_CONVERSION and timestamp < before


@beam.ptransform_fn
def ReadEvents(pipeline: beam.Pipeline, path: str,  # pylint: disable=invalid-name
               conversions_before: Optional[int] = None) -> beam.PCollection:
  """events.parquet or events.csv as keyed events; only conversions before a timestamp if given."""
  if path.endswith(".parquet"):
    events = (pipeline
              | "ReadParquet" >> beam.io.ReadFromParquetBatched(path,
                                                                columns=list(f.EVENTS_COLUMNS))
              | "Rows" >> beam.FlatMap(_table_rows, conversions_before))
  else:
    with tf.io.gfile.GFile(path) as handle:
      header = [c.strip() for c in handle.readline().rstrip("\n").split(",")]
    events = (pipeline
              | "ReadCsv" >> beam.io.ReadFromText(path, skip_header_lines=1)
              | "Parse" >> beam.ParDo(_CsvRow(header)))
  if conversions_before is None:
    return events
  return events | "ConversionsBefore" >> beam.Filter(is_conversion_before, conversions_before)


def is_kept(keyed_event: KeyedEvent, catalog: Mapping) -> bool:
  """An event of a known type on a catalogued item (the others are dropped and counted)."""
  _, (_, event_type, item_id) = keyed_event
  return event_type in f.EVENT_TYPES and item_id in catalog
