"""Reads and validates the input tables (events, items, users) of README's input contract.

One reader for every consumer: the checks here, the Beam jobs (`components/events_io.py`), the
evaluator and the service read the tables through `iter_tables` (pyarrow: CSV per RFC 4180 with
a UTF-8 BOM, CRLF, blank lines and quoted fields holding separators or line breaks; Parquet) and
`typed` (ids of any integer or string type become strings, Arrow timestamps become integers in
the run's timestamp unit), and read timestamps through `parse_timestamps`, so what the checks
accepted is exactly what the pipeline reads.

Problems that make the data unusable raise `InputError` naming the file, column, count and
first offending row (rows count data rows from 0). Rows that are merely out of scope (unknown
event types, events naming unknown items, identical duplicate events) are dropped and counted in
`EventsScan`.

Items: each item's categories are ordered by confidence, highest first (ties keep the listed
order), so `categories[0]` is the primary category whatever order the file lists them in.
"""
import contextlib
import dataclasses
import functools
import io
import os
import time
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import tensorflow as tf

from ctxrec.components.sequence_example_gen.config import SECONDS_PER_DAY, TIMESTAMP_UNITS
from ctxrec.components.sequence_example_gen.config import day_to_date
from ctxrec.components.sequence_example_gen.config import check_timestamp_unit
from ctxrec.transform import features as f

BATCH_ROWS = 1 << 16
CSV_BLOCK_BYTES = 1 << 22
EARLIEST_PLAUSIBLE = 631152000  # 1990-01-01T00:00:00Z: older events are a unit or parsing slip
FUTURE_SLACK_SECONDS = SECONDS_PER_DAY  # events may come up to a day after the check (clocks)
MILLISECONDS_ABOVE = 10 ** 11  # as seconds the year 5138, as milliseconds 1973: a unit slip
ID_COLUMNS = (f.USER_ID, f.ITEM_ID)
_ARROW_UNITS_PER_SECOND = {**TIMESTAMP_UNITS, "us": 10 ** 6, "ns": 10 ** 9}
_READ_ERRORS = (pa.ArrowException, OSError, UnicodeError, tf.errors.OpError)

# Drop counts: keys of `EventsScan.drop_counts`, of the examples artifact's properties and of
# the run's "drops" summary.
DROPPED_EVENT_TYPES = "dropped_event_types"
DROPPED_UNKNOWN_ITEMS = "dropped_unknown_items"
DROPPED_DUPLICATES = "dropped_duplicates"
USERS_WITHOUT_USERS_ROW = "users_without_users_row"
CONVERSIONS_WITHOUT_USERS_ROW = "conversions_without_users_row"


class InputError(ValueError):
  """The user's input tables break the input contract; the message says where and how to fix."""


@dataclasses.dataclass(frozen=True)
class Item:
  categories: Tuple[str, ...]  # highest confidence first: categories[0] is the primary one
  confidences: Tuple[float, ...]


Catalog = Dict[str, Item]
Demographics = Dict[str, Tuple[str, ...]]


@dataclasses.dataclass(frozen=True)
class TableFiles:
  events: str
  items: str
  users: Optional[str]


@dataclasses.dataclass(frozen=True)
class TimestampRules:
  """How the events' timestamps are read, and which ones are plausible (epoch seconds, UTC)."""
  unit: str = "s"  # of integer timestamps: "s" or "ms" (Arrow timestamp columns carry their own)
  earliest: int = EARLIEST_PLAUSIBLE
  future_slack: int = FUTURE_SLACK_SECONDS  # how far after `now` an event may be
  now: Optional[int] = None  # default: the time of the check

  def __post_init__(self):
    check_timestamp_unit(self.unit)

  def latest(self) -> int:
    return (int(time.time()) if self.now is None else self.now) + self.future_slack


@dataclasses.dataclass
class EventsScan:
  """What one validating pass over the events learned: sizes, time range and counted drops.

  Counts after `rows` and `view_rows` are of kept events: a known type, a catalogued item, and
  not an identical duplicate (same user_id, item_id, event_type and timestamp) of an earlier row.
  """
  rows: int = 0
  view_rows: int = 0  # rows with event_type view, before any drop
  views: int = 0
  conversions: int = 0
  dropped_event_types: Dict[str, int] = dataclasses.field(default_factory=dict)
  dropped_unknown_items: int = 0
  duplicates: int = 0
  users: int = 0  # distinct users of kept events
  users_without_users_row: int = 0  # of them, those the users table lacks (0 without a table)
  conversions_without_users_row: int = 0
  min_timestamp: Optional[int] = None
  max_timestamp: Optional[int] = None
  conversions_by_day: Dict[int, int] = dataclasses.field(default_factory=dict)  # UTC epoch day

  def drop_counts(self) -> Dict[str, int]:
    """Every drop by its key (README "Bad input"), for logs, artifact properties and reports."""
    return {DROPPED_EVENT_TYPES: sum(self.dropped_event_types.values()),
            DROPPED_UNKNOWN_ITEMS: self.dropped_unknown_items,
            DROPPED_DUPLICATES: self.duplicates,
            USERS_WITHOUT_USERS_ROW: self.users_without_users_row,
            CONVERSIONS_WITHOUT_USERS_ROW: self.conversions_without_users_row}


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


def is_parquet(path: str) -> bool:
  return path.endswith(".parquet")


@contextlib.contextmanager
def _reading(path: str) -> Iterator[None]:
  """Turns any failure to read a table (empty, truncated, not CSV/Parquet) into an InputError
  naming the file: bad input never ends in a traceback."""
  name, kind = os.path.basename(path), "Parquet" if is_parquet(path) else "CSV"
  try:
    if tf.io.gfile.stat(path).length == 0:
      raise InputError(f"{name}: the file is empty (0 bytes); a {kind} table needs a header "
                       f"and rows")
    yield
  except _READ_ERRORS as exc:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    raise InputError(f"{name}: cannot be read as {kind}: {detail}") from exc


def _csv_read_options() -> pa_csv.ReadOptions:
  return pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES)


def _csv_parse_options() -> pa_csv.ParseOptions:
  # RFC 4180: a quoted field may hold line breaks; blank lines are skipped (the default).
  return pa_csv.ParseOptions(newlines_in_values=True)


def _column_names(path: str) -> List[str]:
  with _reading(path), open_binary(path) as handle:
    if is_parquet(path):
      return list(pq.ParquetFile(handle).schema_arrow.names)
    with pa_csv.open_csv(handle, read_options=_csv_read_options(),
                         parse_options=_csv_parse_options()) as reader:
      return list(reader.schema.names)


def _require_columns(path: str, columns: Sequence[str]) -> None:
  present = _column_names(path)
  missing = [c for c in columns if c not in present]
  if missing:
    hint = "" if is_parquet(path) else "; the first line of a CSV file must be its header"
    raise InputError(
        f"{os.path.basename(path)}: missing column(s) {', '.join(missing)} "
        f"(found: {', '.join(present) or 'none'}); add them or rename the columns{hint}")


def _raw_batches(path: str, handle, columns: Sequence[str]) -> Iterator[pa.Table]:
  if is_parquet(path):
    for batch in pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS, columns=list(columns)):
      yield pa.Table.from_batches([batch])
    return
  reader = pa_csv.open_csv(
      handle, read_options=_csv_read_options(), parse_options=_csv_parse_options(),
      convert_options=pa_csv.ConvertOptions(
          include_columns=list(columns), column_types={c: pa.string() for c in columns},
          strings_can_be_null=True))
  for batch in reader:
    yield pa.Table.from_batches([batch])


def iter_tables(path: str, columns: Sequence[str],
                timestamp_unit: str = "s") -> Iterator[Tuple[int, pa.Table]]:
  """Yields (first row number, Arrow table) batches of the named columns in the contract's types
  (`typed`), bounded in memory; any read failure is an InputError naming the file.

  Reads through tf.io.gfile, so local paths and gs:// (or any TF filesystem) both work.
  """
  _require_columns(path, columns)
  offset = 0
  with _reading(path), open_binary(path) as handle:
    for table in _raw_batches(path, handle, columns):
      yield offset, typed(table, path, timestamp_unit)
      offset += table.num_rows


def iter_batches(path: str, columns: Sequence[str],
                 timestamp_unit: str = "s") -> Iterator[Tuple[int, pd.DataFrame]]:
  """`iter_tables` as pandas DataFrames."""
  for offset, table in iter_tables(path, columns, timestamp_unit):
    yield offset, table.to_pandas()


def typed(table: pa.Table, path: str, timestamp_unit: str = "s") -> pa.Table:
  """The table in the contract's types: ids as strings, dictionary columns decoded, an Arrow
  timestamp column as integers in `timestamp_unit`, which `parse_timestamps` reads."""
  for index, name in enumerate(table.column_names):
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
      column = column.cast(column.type.value_type)
    if name in ID_COLUMNS:
      column = _id_strings(column, name, path)
    elif name == f.TIMESTAMP and pa.types.is_timestamp(column.type):
      column = _timestamp_integers(column, timestamp_unit)
    table = table.set_column(index, name, column)
  return table


def _id_strings(column: pa.ChunkedArray, name: str, path: str) -> pa.ChunkedArray:
  kind = column.type
  if (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
      or pa.types.is_null(kind)):
    return column.cast(pa.string())
  raise InputError(f"{os.path.basename(path)}: column {name} has type {kind}; ids must be "
                   f"strings or integers")


def _timestamp_integers(column: pa.ChunkedArray, unit: str) -> pa.ChunkedArray:
  """An Arrow timestamp column (UTC epoch, any resolution) as int64 counts of `unit`."""
  counts = column.cast(pa.int64())
  have, want = _ARROW_UNITS_PER_SECOND[column.type.unit], TIMESTAMP_UNITS[unit]
  return pc.divide(counts, have // want) if have >= want else pc.multiply(counts, want // have)


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
  if isinstance(value, np.generic):
    value = value.item()
  return repr(value)


def _is_null(value) -> bool:
  return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


def _empty_strings(values: pd.Series) -> np.ndarray:
  return (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()


def _as_list(value) -> Optional[list]:
  """A Parquet list cell or a `;`-separated CSV cell as a list; a null or empty element (`a;;b`
  in CSV) is None. A null cell is None."""
  if _is_null(value):
    return None
  if isinstance(value, str):
    return [part.strip() or None for part in value.split(f.CSV_LIST_SEPARATOR)]
  return [None if _is_null(v) else v for v in value]


def _floats(values: Optional[list]) -> Tuple[Optional[list], bool]:
  """Confidences as floats (None stays None); whether one was not a number."""
  if values is None:
    return None, False
  try:
    return [None if v is None else float(v) for v in values], False
  except (TypeError, ValueError):
    return None, True


@dataclasses.dataclass
class _ItemColumns:
  """One batch of the items table, parsed: category and confidence lists and masks of bad cells."""
  categories: List[Optional[list]]
  confidences: List[Optional[list]]
  no_categories: np.ndarray
  null_confidence: np.ndarray
  non_numeric: np.ndarray

  @classmethod
  def parse(cls, frame: pd.DataFrame) -> "_ItemColumns":
    categories = [_as_list(v) for v in frame[f.CATEGORIES]]
    parsed = [_floats(_as_list(v)) for v in frame[f.CONFIDENCES]]
    confidences = [w for w, _ in parsed]
    no_categories = np.array([not c or any(x is None or not str(x).strip() for x in c)
                              for c in categories], dtype=bool)
    null_confidence = np.array([w is not None and None in w for w in confidences], dtype=bool)
    return cls([[str(x).strip() for x in c] if c else c for c in categories], confidences,
               no_categories, null_confidence, np.array([bad for _, bad in parsed], dtype=bool))

  def usable(self) -> np.ndarray:
    return ~(self.no_categories | self.null_confidence | self.non_numeric)


def _check_items(log: ProblemLog, frame: pd.DataFrame, columns: _ItemColumns,
                 offset: int) -> np.ndarray:
  """Records the items' problems; returns the mask of rows whose lists are valid."""
  log.check(f.CATEGORIES, "no categories or an empty category id", columns.no_categories,
            frame[f.CATEGORIES], offset)
  log.check(f.CONFIDENCES, "a null or empty confidence in the list", columns.null_confidence,
            frame[f.CONFIDENCES], offset)
  log.check(f.CONFIDENCES, "a non-numeric confidence", columns.non_numeric, frame[f.CONFIDENCES],
            offset)
  usable = columns.usable()
  lengths = np.array([len(c or []) != len(w or [])
                      for c, w in zip(columns.categories, columns.confidences)], dtype=bool)
  log.check(f.CONFIDENCES, "a different number of confidences than categories",
            lengths & usable, frame[f.CONFIDENCES], offset)
  out_of_range = np.array([any(x is not None and not 0.0 < x <= 1.0 for x in (w or []))
                           for w in columns.confidences], dtype=bool) & usable
  log.check(f.CONFIDENCES, "a confidence outside (0, 1]", out_of_range, frame[f.CONFIDENCES],
            offset)
  return usable & ~lengths & ~out_of_range


def by_confidence(categories: Sequence[str], confidences: Sequence[float]) -> Item:
  """An item with its categories ordered by confidence, highest first (ties: listed order)."""
  order = sorted(range(len(categories)), key=lambda k: -confidences[k])  # sorted() is stable
  return Item(tuple(categories[k] for k in order), tuple(float(confidences[k]) for k in order))


def load_items(path: str) -> Catalog:
  """Reads the items table into a catalog, or raises InputError listing every problem."""
  log, catalog = ProblemLog(path), {}
  for offset, frame in iter_batches(path, f.ITEMS_COLUMNS):
    ids = frame[f.ITEM_ID]
    log.check(f.ITEM_ID, "an empty item_id", _empty_strings(ids), ids, offset)
    columns = _ItemColumns.parse(frame)
    valid = _check_items(log, frame, columns, offset)
    duplicate = np.zeros(len(frame), dtype=bool)
    for i, item_id in enumerate(ids):
      if item_id in catalog:
        duplicate[i] = True
      elif valid[i]:
        catalog[item_id] = by_confidence(columns.categories[i], columns.confidences[i])
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


def parse_timestamps(values: pd.Series, unit: str = "s") -> Tuple[np.ndarray, np.ndarray]:
  """Returns int64 epoch seconds and a mask of cells that are not non-negative integers of
  `unit` ("s", or "ms": floored to seconds); integers, integer-valued floats and their text."""
  per_second = TIMESTAMP_UNITS[unit]
  if pd.api.types.is_integer_dtype(values.dtype):  # exact, even beyond float precision
    exact = values.to_numpy(dtype="int64")
    return np.floor_divide(exact, per_second), exact < 0
  if values.dtype == object:
    values = values.map(lambda v: v.strip() if isinstance(v, str) else v)
  numeric = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
  with np.errstate(invalid="ignore"):
    bad = ~np.isfinite(numeric) | (numeric < 0) | (np.floor(numeric) != numeric)
    return np.where(bad, 0, np.floor(numeric / per_second)).astype("int64"), bad


def _check_plausible(log: ProblemLog, seconds: np.ndarray, bad: np.ndarray, raw: pd.Series,
                     offset: int, rules: TimestampRules) -> np.ndarray:
  """Records timestamps outside the plausible window, with the likely unit slip; returns the
  mask of implausible rows."""
  latest = rules.latest()  # one cut-off for the whole batch and its message
  early = ~bad & (seconds < rules.earliest)
  late = ~bad & (seconds > latest)
  if rules.unit == "s":
    slip = late & (seconds > MILLISECONDS_ABOVE)
    slip_problem = "a timestamp in milliseconds, not seconds (pass --timestamp-unit ms)"
  else:
    as_written = seconds * TIMESTAMP_UNITS[rules.unit]  # read as seconds, is it plausible?
    slip = early & (as_written >= rules.earliest) & (as_written <= latest)
    slip_problem = "a timestamp in seconds, not milliseconds (drop --timestamp-unit ms)"
  log.check(f.TIMESTAMP, slip_problem, slip, raw, offset)
  log.check(f.TIMESTAMP, f"a timestamp before {day_to_date(rules.earliest // SECONDS_PER_DAY)} (implausible)",
            early & ~slip, raw, offset)
  log.check(f.TIMESTAMP, f"a timestamp after {day_to_date(latest // SECONDS_PER_DAY)} (more than "
            f"{rules.future_slack} s after now)", late & ~slip, raw, offset)
  return early | late


def kept_events(event_types: pd.Series, item_ids: pd.Series,
                catalog: Mapping[str, Item]) -> Tuple[np.ndarray, np.ndarray]:
  """Masks events of a known type and events naming a catalogued item (the rest are dropped)."""
  known_type = event_types.isin(f.EVENT_TYPES).to_numpy()
  known_item = item_ids.map(lambda i: i in catalog).to_numpy(dtype=bool)
  return known_type, known_item


def event_hashes(user_ids, item_ids, event_types, seconds: np.ndarray) -> np.ndarray:
  """A 64-bit hash per event of (user_id, item_id, event_type, timestamp): equal rows collide,
  different ones with odds of about 1e-19 per pair."""
  return pd.util.hash_pandas_object(pd.DataFrame({
      f.USER_ID: np.asarray(user_ids, dtype=object), f.ITEM_ID: np.asarray(item_ids, dtype=object),
      f.EVENT_TYPE: np.asarray(event_types, dtype=object), f.TIMESTAMP: seconds}),
      index=False).to_numpy()


def first_occurrences(hashes: np.ndarray) -> np.ndarray:
  """Masks the first row of each distinct hash (file order), so later copies are the drops."""
  order = np.argsort(hashes, kind="stable")
  ordered = hashes[order]
  first = np.ones(len(hashes), dtype=bool)
  first[1:] = ordered[1:] != ordered[:-1]
  mask = np.empty(len(hashes), dtype=bool)
  mask[order] = first
  return mask


class _KeptEvents:
  """Kept events across batches in compact form (64-bit hashes; day and users-row flag for
  conversions only), so duplicates across the whole file and distinct users are counted at the
  end: about 8 bytes per view and 13 per conversion."""

  def __init__(self, users: Optional[Mapping[str, tuple]]):
    self._users = None if users is None else pd.Index(list(users))
    self._parts: Dict[str, List[np.ndarray]] = {
        k: [] for k in ("view", "conversion", "day", "has_row", "user", "missing_user")}

  def add(self, frame: pd.DataFrame, seconds: np.ndarray) -> None:
    user_ids = frame[f.USER_ID].to_numpy(dtype=object)
    event_types = frame[f.EVENT_TYPE].to_numpy(dtype=object)
    has_row = (np.ones(len(frame), dtype=bool) if self._users is None
               else self._users.get_indexer(user_ids) >= 0)
    hashes = event_hashes(user_ids, frame[f.ITEM_ID], event_types, seconds)
    conversion = event_types == f.EVENT_CONVERSION
    users = pd.util.hash_array(user_ids)
    for key, part in (("view", hashes[~conversion]), ("conversion", hashes[conversion]),
                      ("day", (seconds[conversion] // SECONDS_PER_DAY).astype(np.int32)),
                      ("has_row", has_row[conversion]), ("user", np.unique(users)),
                      ("missing_user", np.unique(users[~has_row]))):
      self._parts[key].append(part)

  def _all(self, key: str, dtype) -> np.ndarray:
    return np.concatenate(self._parts[key]) if self._parts[key] else np.zeros(0, dtype)

  def finish(self, scan: EventsScan) -> None:
    """Fills the scan's counts of kept, deduplicated events."""
    views = self._all("view", np.uint64)
    scan.views = len(np.unique(views))
    first = first_occurrences(self._all("conversion", np.uint64))
    scan.conversions = int(np.count_nonzero(first))
    scan.duplicates = len(views) - scan.views + len(first) - scan.conversions
    days, counts = np.unique(self._all("day", np.int32)[first], return_counts=True)
    scan.conversions_by_day = dict(zip(days.tolist(), counts.tolist()))
    scan.users = len(np.unique(self._all("user", np.uint64)))
    if self._users is not None:
      scan.users_without_users_row = len(np.unique(self._all("missing_user", np.uint64)))
      scan.conversions_without_users_row = int(np.count_nonzero(
          first & ~self._all("has_row", bool)))


def _check_ids(log: ProblemLog, frame: pd.DataFrame, offset: int) -> np.ndarray:
  empty = np.zeros(len(frame), dtype=bool)
  for column in ID_COLUMNS:
    bad = _empty_strings(frame[column])
    log.check(column, f"an empty {column}", bad, frame[column], offset)
    empty |= bad
  return empty


def _count_drops(scan: EventsScan, frame: pd.DataFrame, known_type: np.ndarray,
                 known_item: np.ndarray) -> None:
  scan.rows += len(frame)
  scan.view_rows += int(np.count_nonzero(frame[f.EVENT_TYPE].to_numpy() == f.EVENT_VIEW))
  for value, count in frame[f.EVENT_TYPE][~known_type].fillna("<null>").value_counts().items():
    scan.dropped_event_types[value] = scan.dropped_event_types.get(value, 0) + int(count)
  scan.dropped_unknown_items += int(np.count_nonzero(known_type & ~known_item))


def scan_events(path: str, catalog: Mapping[str, Item],
                users: Optional[Mapping[str, tuple]] = None,
                rules: TimestampRules = TimestampRules()) -> EventsScan:
  """Validates the events table in one bounded-memory pass and counts what will be dropped;
  `users` (the users table, when there is one) counts users it lacks."""
  log, scan, kept = ProblemLog(path), EventsScan(), _KeptEvents(users)
  for offset, frame in iter_batches(path, f.EVENTS_COLUMNS, rules.unit):
    empty_id = _check_ids(log, frame, offset)
    seconds, bad_ts = parse_timestamps(frame[f.TIMESTAMP], rules.unit)
    log.check(f.TIMESTAMP, f"a timestamp that is not a non-negative integer (epoch "
              f"{'milliseconds' if rules.unit == 'ms' else 'seconds'})", bad_ts,
              frame[f.TIMESTAMP], offset)
    bad_ts |= _check_plausible(log, seconds, bad_ts, frame[f.TIMESTAMP], offset, rules)
    known_type, known_item = kept_events(frame[f.EVENT_TYPE], frame[f.ITEM_ID], catalog)
    _count_drops(scan, frame, known_type, known_item)
    keep = known_type & known_item & ~bad_ts & ~empty_id
    kept.add(frame[keep], seconds[keep])
    if keep.any():
      _widen_time_range(scan, seconds[keep])
  log.raise_if_any()
  kept.finish(scan)
  if scan.conversions == 0:
    raise InputError(
        f"{os.path.basename(path)}: no conversion events on catalogued items; the pipeline "
        f"learns from event_type == '{f.EVENT_CONVERSION}' rows")
  return scan


def _widen_time_range(scan: EventsScan, seconds: np.ndarray) -> None:
  low, high = int(seconds.min()), int(seconds.max())
  scan.min_timestamp = low if scan.min_timestamp is None else min(scan.min_timestamp, low)
  scan.max_timestamp = high if scan.max_timestamp is None else max(scan.max_timestamp, high)


def drop_messages(scan: EventsScan) -> List[str]:
  """One line per non-zero drop, for the run log."""
  lines = [f"events: dropped {count} rows with event_type {value!r} (not view/conversion)"
           for value, count in sorted(scan.dropped_event_types.items())]
  for count, text in ((scan.dropped_unknown_items, "rows naming items absent from the items "
                       "table"),
                      (scan.duplicates, "identical duplicate rows (same user_id, item_id, "
                       "event_type, timestamp)")):
    if count:
      lines.append(f"events: dropped {count} {text}")
  if scan.users_without_users_row:
    lines.append(f"events: {scan.users_without_users_row} users "
                 f"({scan.conversions_without_users_row} conversions) have no users-table row; "
                 f"their demographics are '{f.UNKNOWN}'")
  return lines


def drop_warnings(scan: EventsScan, users_table: Optional[str]) -> List[str]:
  """Drops that change what the model can learn: every view, or every users-table match."""
  warnings = []
  if scan.view_rows and not scan.views:
    warnings.append(f"all {scan.view_rows} view events were dropped (unknown items or "
                    f"duplicates): eval examples get no real context")
  if users_table and scan.users and scan.users_without_users_row == scan.users:
    warnings.append(f"no user of the events has a row in {os.path.basename(users_table)} "
                    f"(ids differ?): every user's demographics are '{f.UNKNOWN}'")
  return warnings


def fingerprint(tables: TableFiles) -> str:
  """Names, sizes and modification times of the tables: changes when the data changes."""
  parts = []
  for path in (tables.events, tables.items, tables.users):
    if path:
      stat = tf.io.gfile.stat(path)
      parts.append(f"{path}:{stat.length}:{stat.mtime_nsec}")
  return ";".join(parts)
