"""The generated bad-input suite (issue 12): malformed and unusual variants of the tiny world's
tables, each run through `ctxrec run` as a user would.

A rejected case exits 2 with an error naming its table, prints no traceback, and leaves --out as
it was (absent, or the same listing). An accepted case passes the checks (`--check-only`) with
its drops counted. Rejections happen in the checks before any pipeline starts, so only two
accepted cases run the pipeline (`--validate-only`), to show that the Beam job reads exactly
what the checks read: the examples of messy CSV and of typed Parquet equal those of the clean
tables, duplicates not doubling them. README's "Bad input" tables list every case here.
"""
import collections
import dataclasses
import json
import os
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctxrec.components.sequence_example_gen import example_builder
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig
from ctxrec.pipeline import cli, preflight
from ctxrec.pipeline.config import PipelineConfig
from ctxrec.transform import features as f

Tables = Dict[str, pd.DataFrame]
YEAR_3000 = 32503683600
DAY = 86400


# ---- Writing variants of the tables. ----

def _joined_lists(frame: pd.DataFrame) -> pd.DataFrame:
  frame = frame.copy()
  for column in (f.CATEGORIES, f.CONFIDENCES):
    if column in frame:
      frame[column] = [c if isinstance(c, str) else
                       f.CSV_LIST_SEPARATOR.join(str(v) for v in c) for c in frame[column]]
  return frame


def csv_text(frame: pd.DataFrame, newline: str = "\n", blank_every: int = 0,
             trailing_blank_lines: int = 0, bom: bool = False) -> str:
  """A table as CSV (RFC 4180 quoting by pandas), optionally with CRLF, blank lines between
  records, blank lines at the end and a UTF-8 byte order mark."""
  frame = _joined_lists(frame)
  step = blank_every or max(len(frame), 1)
  chunks = [frame.iloc[i:i + step].to_csv(index=False, header=False, lineterminator=newline)
            for i in range(0, len(frame), step)]
  text = frame.iloc[:0].to_csv(index=False, lineterminator=newline) + newline.join(chunks)
  return ("\ufeff" if bom else "") + text + newline * trailing_blank_lines


def write_folder(tables: Tables, folder: str, fmt: str = "parquet",
                 text: Callable[[pd.DataFrame], str] = csv_text) -> str:
  os.makedirs(folder, exist_ok=True)
  for name, frame in tables.items():
    path = os.path.join(folder, f"{name}.{fmt}")
    if fmt == "parquet":
      frame.to_parquet(path, index=False)
    else:
      with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(text(frame))
  return folder


def changed(tables: Tables, name: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Tables:
  return {**tables, name: change(tables[name].copy())}


def set_cell(column: str, value, row: int = 0, kind: Optional[str] = None):
  """Sets one cell (of the first row of event type `kind`, if given)."""
  def change(frame):
    rows = np.flatnonzero(frame[f.EVENT_TYPE] == kind) if kind else np.arange(len(frame))
    frame[column] = frame[column].astype(object)
    frame.at[frame.index[rows[row]], column] = value
    return frame
  return change


def _conversions(frame):
  return frame[frame[f.EVENT_TYPE] == f.EVENT_CONVERSION]


def _views(frame):
  return frame[frame[f.EVENT_TYPE] == f.EVENT_VIEW]


def _numeric_ids(tables: Tables) -> Tables:
  """Ids as int64 (u0000042 -> 42): a one-to-one renaming, so the examples keep their counts."""
  out = {}
  for name, frame in tables.items():
    frame = frame.copy()
    for column in input_tables.ID_COLUMNS:
      if column in frame:
        frame[column] = frame[column].str[1:].astype("int64")
    out[name] = frame
  return out


def _awkward_item_ids(tables: Tables) -> Tables:
  """Every tenth item id holds a separator, a quote and a line break (quoted in CSV)."""
  def rename(values):
    return values.map(lambda i: f'{i},"x"\nend' if int(i[1:]) % 10 == 0 else i)
  return {**tables, f.EVENTS: tables[f.EVENTS].assign(item_id=rename(tables[f.EVENTS][f.ITEM_ID])),
          f.ITEMS: tables[f.ITEMS].assign(item_id=rename(tables[f.ITEMS][f.ITEM_ID])),
          f.USERS: tables[f.USERS].assign(country=tables[f.USERS]["country"] + ", East")}


def _milliseconds(frame):
  rng = np.random.default_rng(0)
  return frame.assign(timestamp=frame[f.TIMESTAMP] * 1000 + rng.integers(0, 1000, len(frame)))


# ---- The cases. ----

@dataclasses.dataclass(frozen=True)
class Case:
  """A variant of the tiny tables and what `ctxrec run` must make of it."""
  name: str
  make: Callable[[Tables, str], None]  # writes the data folder
  expect: str  # rejected: the error text (naming the table); accepted: a line of the summary
  args: Tuple[str, ...] = ()


def parquet(change=None, name=f.EVENTS):
  return lambda tables, folder: write_folder(
      changed(tables, name, change) if change else tables, folder)


def csv(change=None, name=f.EVENTS, **text_options):
  return lambda tables, folder: write_folder(
      changed(tables, name, change) if change else tables, folder, "csv",
      lambda frame: csv_text(frame, **text_options))


def raw(file_name: str, content: bytes, without: str = ""):
  """The tiny tables as Parquet, with one file replaced by raw bytes."""
  def make(tables, folder):
    write_folder(tables, folder)
    if without:
      os.remove(os.path.join(folder, without))
    with open(os.path.join(folder, file_name), "wb") as out:
      out.write(content)
  return make


def _null_in_list(column):
  def change(frame):
    frame[column] = frame[column].astype(object)
    frame.at[frame.index[3], column] = [frame[column].iloc[3][0], None]
    return frame
  return change


def _headerless(tables, folder):
  write_folder(tables, folder)
  os.remove(os.path.join(folder, "events.parquet"))
  write_folder({f.EVENTS: tables[f.EVENTS]}, folder, "csv",
               lambda frame: csv_text(frame).split("\n", 1)[1])


def _one_category(frame):
  return set_cell(f.CONFIDENCES, [1.5])(set_cell(f.CATEGORIES, ["c001"])(frame))


EVENTS_HEADER = b"user_id,item_id,event_type,timestamp\n"
REJECTED = [
    Case("year 3000 timestamp", parquet(set_cell(f.TIMESTAMP, YEAR_3000, kind="conversion")),
         "events.parquet: 1 rows have a timestamp after"),
    Case("millisecond timestamps", parquet(_milliseconds),
         "events.parquet: 17342 rows have a timestamp in milliseconds, not seconds (pass "
         "--timestamp-unit ms) in column timestamp (first at row 0:"),
    Case("seconds read with --timestamp-unit ms", parquet(),
         "events.parquet: 17342 rows have a timestamp in seconds, not milliseconds",
         args=("--timestamp-unit", "ms")),
    Case("negative timestamp", parquet(set_cell(f.TIMESTAMP, -60, row=5)),
         "events.parquet: 1 rows have a timestamp that is not a non-negative integer (epoch "
         "seconds) in column timestamp (first at row 5: -60)"),
    Case("timestamp before 1990", parquet(set_cell(f.TIMESTAMP, DAY, row=7)),
         "events.parquet: 1 rows have a timestamp before 1990-01-01"),
    Case("fractional timestamp in CSV", csv(set_cell(f.TIMESTAMP, "1767225600.5")),
         "events.csv: 1 rows have a timestamp that is not a non-negative integer"),
    Case("non-numeric timestamp in CSV", csv(set_cell(f.TIMESTAMP, "yesterday", row=2)),
         "events.csv: 1 rows have a timestamp that is not a non-negative integer (epoch seconds) "
         "in column timestamp (first at row 2: 'yesterday')"),
    Case("empty user_id in events", parquet(set_cell(f.USER_ID, "", row=4)),
         "events.parquet: 1 rows have an empty user_id in column user_id (first at row 4: '')"),
    Case("empty item_id in items (CSV)", csv(set_cell(f.ITEM_ID, "", row=1), name=f.ITEMS),
         "items.csv: 1 rows have an empty item_id"),
    Case("empty user_id in users", parquet(set_cell(f.USER_ID, " "), name=f.USERS),
         "users.parquet: 1 rows have an empty user_id"),
    Case("null inside categories", parquet(_null_in_list(f.CATEGORIES), name=f.ITEMS),
         "items.parquet: 1 rows have no categories or an empty category id in column categories "
         "(first at row 3:"),
    Case("null inside confidences", parquet(_null_in_list(f.CONFIDENCES), name=f.ITEMS),
         "items.parquet: 1 rows have a null or empty confidence in the list"),
    Case("empty element in a CSV list", csv(set_cell(f.CATEGORIES, "c001;;c002"), name=f.ITEMS),
         "items.csv: 1 rows have no categories or an empty category id"),
    Case("confidence outside (0, 1]", parquet(_one_category, name=f.ITEMS),
         "items.parquet: 1 rows have a confidence outside (0, 1] in column confidences (first "
         "at row 0: [1.5])"),
    Case("duplicate item row", parquet(lambda t: pd.concat([t, t.iloc[[9]]]), name=f.ITEMS),
         "items.parquet: 1 rows have a duplicate item_id"),
    Case("float ids in Parquet", parquet(lambda t: t.assign(item_id=np.arange(len(t)) + 0.5),
                                         name=f.ITEMS),
         "items.parquet: column item_id has type double; ids must be strings or integers"),
    Case("missing column", parquet(lambda t: t.drop(columns=[f.EVENT_TYPE])),
         "events.parquet: missing column(s) event_type"),
    Case("CSV without a header", _headerless, "events.csv: missing column(s) user_id, item_id"),
    Case("zero-byte CSV", raw("events.csv", b"", without="events.parquet"),
         "events.csv: the file is empty (0 bytes)"),
    Case("zero-byte Parquet", raw("items.parquet", b""), "items.parquet: the file is empty"),
    Case("truncated Parquet", raw("events.parquet", b"PAR1\x00\x00PAR1"),
         "events.parquet: cannot be read as Parquet"),
    Case("ragged CSV row", raw("events.csv", EVENTS_HEADER + b"u1,i0000001,view\n",
                               without="events.parquet"),
         "events.csv: cannot be read as CSV"),
    Case("invalid UTF-8 in CSV", raw("events.csv", EVENTS_HEADER + b"u\xff,i0000001,view,1\n",
                                     without="events.parquet"),
         "events.csv: cannot be read as CSV"),
    Case("missing events table", raw("other.txt", b"", without="events.parquet"),
         "no events.parquet or events.csv"),
    Case("both CSV and Parquet", raw("events.csv", EVENTS_HEADER), "both events.parquet and "
         "events.csv exist"),
    Case("no conversion on a catalogued item",
         parquet(lambda t: t.assign(item_id=np.where(t[f.EVENT_TYPE] == f.EVENT_CONVERSION, "zz",
                                                     t[f.ITEM_ID]))),
         "events.parquet: no conversion events on catalogued items"),
    Case("all events on one day",
         parquet(lambda t: t.assign(timestamp=1767225600 + t[f.TIMESTAMP] % DAY)),
         "events.parquet: all 3154 conversions fall on one day (2026-01-01)"),
]

ACCEPTED = [
    Case("UTF-8 BOM", csv(bom=True), "3154 conversions kept"),
    Case("CRLF line ends", csv(newline="\r\n"), "3154 conversions kept"),
    Case("blank lines and a trailing double newline", csv(blank_every=1000,
                                                          trailing_blank_lines=2),
         "3154 conversions kept"),
    Case("quoted fields with separators, quotes and line breaks",
         lambda tables, folder: write_folder(_awkward_item_ids(tables), folder, "csv"),
         "3154 conversions kept"),
    Case("int64 ids in Parquet",
         lambda tables, folder: write_folder(_numeric_ids(tables), folder),
         "3154 conversions kept, 496 users"),
    Case("Arrow timestamp column",
         parquet(lambda t: t.assign(timestamp=pd.to_datetime(t[f.TIMESTAMP], unit="s",
                                                              utc=True))),
         "3154 conversions kept"),
    Case("millisecond timestamps with --timestamp-unit ms", parquet(_milliseconds),
         "3154 conversions kept", args=("--timestamp-unit", "ms")),
    Case("duplicated conversion rows", parquet(lambda t: pd.concat([t, _conversions(t)])),
         "dropped_duplicates=3154"),
    Case("unknown event types", parquet(lambda t: pd.concat(
        [t, _views(t).iloc[:40].assign(event_type="click")])),
         "dropped_event_types=40"),
    Case("events naming unknown items", parquet(lambda t: pd.concat(
        [t, _conversions(t).iloc[:25].assign(item_id="gone")])),
         "dropped_unknown_items=25"),
    Case("users without a users row", parquet(lambda t: t.iloc[10:], name=f.USERS),
         "users_without_users_row=10"),
    Case("no users-table match (warning)",
         parquet(lambda t: t.assign(user_id="x" + t[f.USER_ID]), name=f.USERS),
         "warning: no user of the events has a row in users.parquet"),
    Case("every view names an unknown item (warning)",
         parquet(lambda t: t.assign(item_id=np.where(t[f.EVENT_TYPE] == f.EVENT_VIEW, "gone",
                                                     t[f.ITEM_ID]))),
         "warning: all 14188 view events were dropped"),
    Case("extra columns", parquet(lambda t: t.assign(session="s1", note="a, b")),
         "3154 conversions kept"),
]


@pytest.fixture(scope="module")
def tiny_tables(tiny_data) -> Tables:
  tables = {name: pd.read_parquet(os.path.join(tiny_data, f"{name}.parquet"))
            for name in (f.EVENTS, f.ITEMS, f.USERS)}
  # The counts the cases assert, from the clean tiny world (seed 7).
  assert len(tables[f.EVENTS]) == 17342 and len(_conversions(tables[f.EVENTS])) == 3154
  return tables


def _listing(root) -> list:
  if not os.path.exists(root):
    return ["<absent>"]
  return sorted(os.path.relpath(os.path.join(d, n), root)
                for d, dirs, files in os.walk(root) for n in dirs + files)


def _run(args, capsys) -> Tuple[int, str, str]:
  code = cli.main(["run", *args])
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def _prepare_out(tmp_path, state: str) -> str:
  out = str(tmp_path / "out")
  if state == "existing":
    os.makedirs(os.path.join(out, "earlier"))
    with open(os.path.join(out, "earlier", "result.txt"), "w") as handle:
      handle.write("from an earlier run")
  return out


@pytest.mark.parametrize("out_state", ["absent", "existing"])
@pytest.mark.parametrize("case", REJECTED, ids=lambda c: c.name)
def test_rejected_inputs_exit_2_naming_the_table_and_leave_out_as_it_was(
    case, out_state, tiny_tables, tmp_path, capsys):
  data = str(tmp_path / "data")
  case.make(tiny_tables, data)
  out = _prepare_out(tmp_path, out_state)
  before = _listing(out)
  code, _, err = _run(["--data", data, "--out", out, *case.args], capsys)
  assert code == cli.EXIT_USAGE, err
  assert "Traceback" not in err
  assert err.count("ctxrec run: error: ") == 1
  assert case.expect in err
  assert _listing(out) == before


def test_out_naming_a_file_is_rejected_and_the_file_kept(tiny_tables, tmp_path, capsys):
  data = write_folder(tiny_tables, str(tmp_path / "data"))
  out = tmp_path / "out.txt"
  out.write_text("not a folder")
  code, _, err = _run(["--data", data, "--out", str(out)], capsys)
  assert code == cli.EXIT_USAGE and "Traceback" not in err
  assert f"ctxrec run: error: {out}: --out names a file, not a folder" in err
  assert out.read_text() == "not a folder"


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_accepted_inputs_pass_the_checks_with_their_drops_counted(case, tiny_tables, tmp_path,
                                                                  capsys):
  data = str(tmp_path / "data")
  case.make(tiny_tables, data)
  out = str(tmp_path / "out")
  code, printed, err = _run(["--data", data, "--out", out, "--check-only", *case.args], capsys)
  assert code == 0, err
  assert case.expect in printed
  assert not os.path.exists(out)


# ---- Two runs of the pipeline: the Beam job reads what the checks read. ----

def expected_examples(tables: Tables, tmp_path) -> Dict[str, int]:
  """Examples per split of the clean tables, built without Beam by the same example builder."""
  data = write_folder(tables, str(tmp_path / "clean"))
  config = SequenceExampleGenConfig()
  checked = preflight.check_inputs(PipelineConfig(data_dir=data, output_dir=str(tmp_path / "x"),
                                                  example_gen=config))
  catalog = input_tables.load_items(checked.tables.items)
  events = tables[f.EVENTS]
  counts = collections.Counter()
  for user_id, rows in events.groupby(f.USER_ID):
    kept = [(t, kind, item) for item, kind, t in
            zip(rows[f.ITEM_ID], rows[f.EVENT_TYPE], rows[f.TIMESTAMP].tolist()) if item in catalog]
    for split, _ in example_builder.build_user_examples(
        user_id, kept, catalog, (f.UNKNOWN,) * 2, config, checked.split.eval_start_day):
      counts[split] += 1
  return dict(counts)


def _examples_line(counts: Dict[str, int]) -> str:
  return "examples: " + ", ".join(f"{s}={n}" for s, n in sorted(counts.items()))


def _drops(out: str) -> dict:
  with open(os.path.join(out, "report", preflight.INPUT_SUMMARY_FILE)) as handle:
    return json.load(handle)[preflight.DROPS]


@pytest.fixture(scope="module")
def clean_examples(tiny_tables, tmp_path_factory) -> Dict[str, int]:
  return expected_examples(tiny_tables, tmp_path_factory.mktemp("expected"))


def test_messy_csv_gives_the_examples_of_the_clean_tables(tiny_tables, clean_examples, tmp_path,
                                                          capsys):
  """BOM, CRLF, blank lines, a trailing double newline, quoted ids holding separators, quotes
  and line breaks, millisecond timestamps and every conversion logged twice, all at once."""
  messy = _awkward_item_ids(tiny_tables)
  events = _milliseconds(messy[f.EVENTS])
  messy[f.EVENTS] = pd.concat([events, _conversions(events)])
  data = write_folder(messy, str(tmp_path / "data"), "csv",
                      lambda frame: csv_text(frame, "\r\n", 997, 2, bom=True))
  out = str(tmp_path / "out")
  code, printed, err = _run(["--data", data, "--out", out, "--validate-only",
                             "--timestamp-unit", "ms"], capsys)
  assert code == 0, err
  assert _examples_line(clean_examples) in printed  # the duplicates do not double them
  assert "dropped_duplicates=3154" in printed
  assert _drops(out)["dropped_duplicates"] == 3154


def test_typed_parquet_gives_the_examples_of_the_clean_tables(tiny_tables, clean_examples,
                                                              tmp_path, capsys):
  """Int64 ids, an Arrow timestamp[ms, UTC] column and every view logged twice."""
  typed = _numeric_ids(tiny_tables)
  events = pd.concat([typed[f.EVENTS], _views(typed[f.EVENTS])])
  data = write_folder(typed, str(tmp_path / "data"))
  table = pa.Table.from_pandas(events, preserve_index=False)
  index = table.column_names.index(f.TIMESTAMP)
  table = table.set_column(index, f.TIMESTAMP, pa.array(
      table.column(f.TIMESTAMP).to_numpy() * 1000, pa.timestamp("ms", tz="UTC")))
  pq.write_table(table, os.path.join(data, "events.parquet"))
  out = str(tmp_path / "out")
  code, printed, err = _run(["--data", data, "--out", out, "--validate-only"], capsys)
  assert code == 0, err
  assert _examples_line(clean_examples) in printed
  assert _drops(out)["dropped_duplicates"] == 14188
