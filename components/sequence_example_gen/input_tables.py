"""Reads and validates the input tables (events, items, users) of README's input contract.

Problems that make the data unusable raise `InputError` naming the file, column, count and
first offending row (rows count data rows from 0). Rows that are merely out of scope
(unknown event types, events naming unknown items) are dropped and counted in `DropCounts`.
"""
import dataclasses
import functools
import io
import os
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import tensorflow as tf

from ctxrec.transform import features as f

BATCH_ROWS = 1 << 16


class InputError(ValueError):
  """The user's input tables break the input contract; the message says where and how to fix."""


@dataclasses.dataclass(frozen=True)
class Item:
  categories: Tuple[str, ...]
  confidences: Tuple[float, ...]


Catalog = Dict[str, Item]
Demographics = Dict[str, Tuple[str, ...]]


@dataclasses.dataclass(frozen=True)
class TableFiles:
  events: str
  items: str
  users: Optional[str]


@dataclasses.dataclass
class EventsScan:
  """What one validating pass over the events learned: sizes, time range and counted drops."""
  rows: int = 0
  views: int = 0
  conversions: int = 0
  dropped_event_types: Dict[str, int] = dataclasses.field(default_factory=dict)
  dropped_unknown_items: int = 0
  min_timestamp: Optional[int] = None
  max_timestamp: Optional[int] = None


def find_table(data_dir: str, stem: str, required: bool = True) -> Optional[str]:
  """Returns DIR/stem.parquet or DIR/stem.csv, whichever exists."""
  found = [os.path.join(data_dir, f"{stem}.{ext}") for ext in f.TABLE_FORMATS]
  found = [p for p in found if tf.io.gfile.exists(p) and not tf.io.gfile.isdir(p)]
  if len(found) > 1:
    raise InputError(f"{data_dir}: both {stem}.parquet and {stem}.csv exist; keep one of them")
  if not found and required:
    raise InputError(
        f"{data_dir}: no {stem}.parquet or {stem}.csv; the input contract needs the "
        f"{stem} table (see README 'Input contract', or make one with `ctxrec generate`)")
  return found[0] if found else None


def locate_tables(data_dir: str) -> TableFiles:
  """Finds the three input tables in a data directory (users is optional)."""
  if not tf.io.gfile.isdir(data_dir):
    raise InputError(f"{data_dir}: no such directory; pass the folder holding events and items")
  return TableFiles(
      events=find_table(data_dir, f.EVENTS),
      items=find_table(data_dir, f.ITEMS),
      users=find_table(data_dir, f.USERS, required=False))


class _GFileReader(io.RawIOBase):
  """A seekable binary reader over tf.io.gfile (local, gs://, ...) that pyarrow accepts."""

  def __init__(self, path: str):
    super().__init__()
    self._file = tf.io.gfile.GFile(path, "rb")

  def readable(self) -> bool:
    return True

  def seekable(self) -> bool:
    return True

  def readinto(self, buffer) -> int:
    data = self._file.read(len(buffer))
    buffer[:len(data)] = data
    return len(data)

  def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
    self._file.seek(offset, whence)
    return self._file.tell()

  def tell(self) -> int:
    return self._file.tell()

  def close(self) -> None:
    self._file.close()
    super().close()


def open_binary(path: str) -> io.BufferedReader:
  """Opens any TensorFlow-filesystem path for pyarrow, buffered."""
  return io.BufferedReader(_GFileReader(path), buffer_size=1 << 20)


def _column_names(path: str) -> List[str]:
  with open_binary(path) as handle:
    if path.endswith(".parquet"):
      return list(pq.ParquetFile(handle).schema_arrow.names)
    with pa_csv.open_csv(handle) as reader:
      return list(reader.schema.names)


def _require_columns(path: str, columns: Sequence[str]) -> None:
  present = _column_names(path)
  missing = [c for c in columns if c not in present]
  if missing:
    raise InputError(
        f"{os.path.basename(path)}: missing column(s) {', '.join(missing)} "
        f"(found: {', '.join(present) or 'none'}); add them or rename the columns")


def iter_batches(path: str, columns: Sequence[str]) -> Iterator[Tuple[int, pd.DataFrame]]:
  """Yields (first row number, DataFrame) batches of the named columns, bounded in memory.

  Reads through tf.io.gfile, so local paths and gs:// (or any TF filesystem) both work.
  """
  _require_columns(path, columns)
  offset = 0
  with open_binary(path) as handle:
    if path.endswith(".parquet"):
      batches = pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS, columns=list(columns))
    else:
      batches = pa_csv.open_csv(
          handle,
          read_options=pa_csv.ReadOptions(block_size=1 << 22),
          convert_options=pa_csv.ConvertOptions(
              include_columns=list(columns),
              column_types={c: pa.string() for c in columns},
              strings_can_be_null=True))
    for batch in batches:
      frame = batch.to_pandas()
      yield offset, frame
      offset += len(frame)


class ProblemLog:
  """Collects every contract violation of one file, so one error lists them all."""

  def __init__(self, path: str):
    self._name = os.path.basename(path)
    self._problems: Dict[Tuple[str, str], List] = {}

  def check(self, column: str, problem: str, bad: np.ndarray, values: pd.Series,
            offset: int) -> None:
    """Records rows where `bad` is true as `problem` of `column`."""
    count = int(np.count_nonzero(bad))
    if not count:
      return
    key = (column, problem)
    if key not in self._problems:
      first = int(np.flatnonzero(bad)[0])
      self._problems[key] = [0, offset + first, values.iloc[first]]
    self._problems[key][0] += count

  def raise_if_any(self) -> None:
    if not self._problems:
      return
    lines = [
        f"{self._name}: {count} rows have {problem} in column {column} "
        f"(first at row {row}: {_shown(value)})"
        for (column, problem), (count, row, value) in self._problems.items()]
    raise InputError("\n".join(lines))


def _shown(value) -> str:
  if isinstance(value, np.ndarray):
    value = value.tolist()
  return repr(value)


def _empty_strings(values: pd.Series) -> np.ndarray:
  return (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()


def _as_list(value, parse) -> Optional[list]:
  """Turns a Parquet list cell or a `;`-separated CSV cell into a Python list."""
  if value is None or (isinstance(value, float) and np.isnan(value)):
    return None
  if isinstance(value, str):
    return [parse(v.strip()) for v in value.split(f.CSV_LIST_SEPARATOR) if v.strip()]
  return [parse(v) for v in value]


def _parse_lists(values: pd.Series, parse) -> Tuple[List[Optional[list]], np.ndarray]:
  """Parses list cells; returns the lists and a mask of cells that could not be parsed."""
  parsed, bad = [], np.zeros(len(values), dtype=bool)
  for i, value in enumerate(values):
    try:
      parsed.append(_as_list(value, parse))
    except (TypeError, ValueError):
      parsed.append(None)
      bad[i] = True
  return parsed, bad


def load_items(path: str) -> Catalog:
  """Reads the items table into a catalog, or raises InputError listing every problem."""
  log, catalog = ProblemLog(path), {}
  for offset, frame in iter_batches(path, f.ITEMS_COLUMNS):
    ids = frame[f.ITEM_ID]
    log.check(f.ITEM_ID, "an empty item_id", _empty_strings(ids), ids, offset)
    categories, bad_cat = _parse_lists(frame[f.CATEGORIES], lambda v: str(v).strip())
    confidences, bad_conf = _parse_lists(frame[f.CONFIDENCES], float)
    no_cat = np.array([c is None or not c or any(not x for x in c) for c in categories])
    log.check(f.CATEGORIES, "no categories or an empty category id", no_cat | bad_cat,
              frame[f.CATEGORIES], offset)
    log.check(f.CONFIDENCES, "a non-numeric confidence", bad_conf, frame[f.CONFIDENCES], offset)
    lengths = np.array([len(c or []) != len(w or []) for c, w in zip(categories, confidences)])
    log.check(f.CONFIDENCES, "a different number of confidences than categories",
              lengths & ~no_cat & ~bad_conf, frame[f.CONFIDENCES], offset)
    out_of_range = np.array([any(not 0.0 < x <= 1.0 for x in (w or [])) for w in confidences])
    log.check(f.CONFIDENCES, "a confidence outside (0, 1]", out_of_range, frame[f.CONFIDENCES],
              offset)
    duplicate = np.zeros(len(frame), dtype=bool)
    for i, (item_id, cats, confs) in enumerate(zip(ids, categories, confidences)):
      if item_id in catalog:
        duplicate[i] = True
      elif cats and confs:
        catalog[item_id] = Item(tuple(cats), tuple(confs))
    log.check(f.ITEM_ID, "a duplicate item_id (each item needs exactly one row)", duplicate,
              ids, offset)
  log.raise_if_any()
  if not catalog:
    raise InputError(f"{os.path.basename(path)}: no items; the catalog cannot be empty")
  return catalog


def items_frame(catalog: Catalog) -> pd.DataFrame:
  """The catalog as a table (item_id, categories, confidences), in catalog order."""
  return pd.DataFrame({f.ITEM_ID: list(catalog),
                       f.CATEGORIES: [list(item.categories) for item in catalog.values()],
                       f.CONFIDENCES: [list(item.confidences) for item in catalog.values()]})


def load_items_once(path: str) -> Catalog:
  """`load_items`, once per process while the file is unchanged: Beam DoFns load items through
  this in `setup` rather than take a side input, whose million Python objects Beam's state
  cache would re-measure in every bundle."""
  stat = tf.io.gfile.stat(path)
  return _load_items_cached(path, stat.length, stat.mtime_nsec)


@functools.lru_cache(maxsize=1)
def _load_items_cached(path: str, length: int, mtime_nsec: int) -> Catalog:
  del length, mtime_nsec  # part of the cache key only
  return load_items(path)


def load_users(path: Optional[str], demographic_columns: Sequence[str]) -> Demographics:
  """Reads demographics by user; a missing table gives every user `unknown` later."""
  if path is None:
    return {}
  log, users = ProblemLog(path), {}
  for offset, frame in iter_batches(path, (f.USER_ID, *demographic_columns)):
    ids = frame[f.USER_ID]
    log.check(f.USER_ID, "an empty user_id", _empty_strings(ids), ids, offset)
    values = frame[list(demographic_columns)].astype(object)
    values = values.where(~values.isna(), f.UNKNOWN).astype(str)
    values = values.where(values.apply(lambda col: col.str.strip() != ""), f.UNKNOWN)
    duplicate = np.zeros(len(frame), dtype=bool)
    for i, (user_id, row) in enumerate(zip(ids, values.itertuples(index=False, name=None))):
      if user_id in users:
        duplicate[i] = True
      else:
        users[user_id] = tuple(row)
    log.check(f.USER_ID, "a duplicate user_id (each user needs at most one row)", duplicate,
              ids, offset)
  log.raise_if_any()
  return users


def parse_timestamps(values: pd.Series) -> Tuple[np.ndarray, np.ndarray]:
  """Returns int64 timestamps and a mask of cells that are not non-negative integers."""
  numeric = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
  bad = np.isnan(numeric) | (numeric < 0) | (np.floor(numeric) != numeric)
  if pd.api.types.is_integer_dtype(values.dtype):  # exact, even beyond float precision
    exact = values.to_numpy(dtype="int64")
    return exact, exact < 0
  return np.where(bad, 0, numeric).astype("int64"), bad


def kept_events(event_types: pd.Series, item_ids: pd.Series,
                catalog: Mapping[str, Item]) -> Tuple[np.ndarray, np.ndarray]:
  """Masks events of a known type and events naming a catalogued item (the rest are dropped)."""
  known_type = event_types.isin(f.EVENT_TYPES).to_numpy()
  known_item = item_ids.map(lambda i: i in catalog).to_numpy(dtype=bool)
  return known_type, known_item


def scan_events(path: str, catalog: Mapping[str, Item]) -> EventsScan:
  """Validates the events table in one bounded-memory pass and counts what will be dropped."""
  log, scan = ProblemLog(path), EventsScan()
  for offset, frame in iter_batches(path, f.EVENTS_COLUMNS):
    scan.rows += len(frame)
    for column in (f.USER_ID, f.ITEM_ID):
      log.check(column, f"an empty {column}", _empty_strings(frame[column]), frame[column],
                offset)
    timestamps, bad_ts = parse_timestamps(frame[f.TIMESTAMP])
    log.check(f.TIMESTAMP, "a timestamp that is not a non-negative integer (epoch seconds)",
              bad_ts, frame[f.TIMESTAMP], offset)
    known_type, known_item = kept_events(frame[f.EVENT_TYPE], frame[f.ITEM_ID], catalog)
    for value, count in frame[f.EVENT_TYPE][~known_type].fillna("<null>").value_counts().items():
      scan.dropped_event_types[value] = scan.dropped_event_types.get(value, 0) + int(count)
    scan.dropped_unknown_items += int(np.count_nonzero(known_type & ~known_item))
    kept = known_type & known_item & ~bad_ts
    _add_kept(scan, frame[f.EVENT_TYPE].to_numpy()[kept], timestamps[kept])
  log.raise_if_any()
  if scan.conversions == 0:
    raise InputError(
        f"{os.path.basename(path)}: no conversion events on catalogued items; the pipeline "
        f"learns from event_type == '{f.EVENT_CONVERSION}' rows")
  return scan


def _add_kept(scan: EventsScan, event_types: np.ndarray, timestamps: np.ndarray) -> None:
  if not len(timestamps):
    return
  scan.conversions += int(np.count_nonzero(event_types == f.EVENT_CONVERSION))
  scan.views += int(np.count_nonzero(event_types == f.EVENT_VIEW))
  low, high = int(timestamps.min()), int(timestamps.max())
  scan.min_timestamp = low if scan.min_timestamp is None else min(scan.min_timestamp, low)
  scan.max_timestamp = high if scan.max_timestamp is None else max(scan.max_timestamp, high)


def fingerprint(tables: TableFiles) -> str:
  """Names, sizes and modification times of the tables: changes when the data changes."""
  parts = []
  for path in (tables.events, tables.items, tables.users):
    if path:
      stat = tf.io.gfile.stat(path)
      parts.append(f"{path}:{stat.length}:{stat.mtime_nsec}")
  return ";".join(parts)
