"""Every bad-input case of the input contract: a clear error or a counted drop."""
import os

import pandas as pd
import pytest

from ctxrec.components.sequence_example_gen import example_builder
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig
from ctxrec.components.sequence_example_gen.input_tables import InputError
from ctxrec.transform import features as f

T0 = 1767225600
GOOD_ITEMS = [("a", ["c1", "c2"], [0.9, 0.3]), ("b", ["c2"], [1.0])]
GOOD_EVENTS = [("u1", "a", "view", T0), ("u1", "a", "conversion", T0 + 60),
               ("u2", "b", "conversion", T0 + 120)]


def _scan(folder):
  tables = input_tables.locate_tables(folder)
  return input_tables.scan_events(tables.events, input_tables.load_items(tables.items))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_good_tables_load_in_both_formats(write_tables, fmt):
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS, [("u1", "US", "25-34")], fmt=fmt)
  tables = input_tables.locate_tables(folder)
  catalog = input_tables.load_items(tables.items)
  assert catalog["a"] == input_tables.Item(("c1", "c2"), (0.9, 0.3))
  assert input_tables.load_users(tables.users, f.DEFAULT_DEMOGRAPHIC_COLUMNS) == {
      "u1": ("US", "25-34")}
  scan = input_tables.scan_events(tables.events, catalog)
  assert (scan.rows, scan.views, scan.conversions) == (3, 1, 2)
  assert (scan.min_timestamp, scan.max_timestamp) == (T0, T0 + 120)


def test_missing_table_and_missing_folder(tmp_path, write_tables):
  with pytest.raises(InputError, match="no such directory"):
    input_tables.locate_tables(str(tmp_path / "nope"))
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS)
  os.remove(os.path.join(folder, "items.parquet"))
  with pytest.raises(InputError, match="no items.parquet or items.csv"):
    input_tables.locate_tables(folder)


def test_missing_column_names_file_and_column(write_tables):
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS)
  path = os.path.join(folder, "events.parquet")
  pd.read_parquet(path).drop(columns=[f.TIMESTAMP]).to_parquet(path)
  with pytest.raises(InputError, match=r"events.parquet: missing column\(s\) timestamp"):
    _scan(folder)


@pytest.mark.parametrize("column,row", [(f.USER_ID, 1), (f.ITEM_ID, 2)])
def test_empty_ids_are_errors_with_count_and_first_row(write_tables, column, row):
  events = [list(e) for e in GOOD_EVENTS] + [["u3", "b", "view", T0]]
  events[row][0 if column == f.USER_ID else 1] = ""
  events[3][0 if column == f.USER_ID else 1] = " "
  with pytest.raises(InputError) as error:
    _scan(write_tables([tuple(e) for e in events], GOOD_ITEMS))
  assert f"events.parquet: 2 rows have an empty {column} in column {column} (first at row {row}" \
      in str(error.value)


@pytest.mark.parametrize("fmt,bad,first", [
    ("parquet", [1.5, -3.0], "1.5"), ("csv", ["1.5", "-3"], "'1.5'"), ("csv", ["abc", ""], "'abc'")])
def test_bad_timestamps_are_errors(write_tables, fmt, bad, first):
  events = [("u1", "a", "view", T0), ("u1", "a", "conversion", bad[0]),
            ("u1", "b", "conversion", bad[1])]
  with pytest.raises(InputError) as error:
    _scan(write_tables(events, GOOD_ITEMS, fmt=fmt))
  message = str(error.value)
  assert f"events.{fmt}: 2 rows have a timestamp that is not a non-negative integer" in message
  assert f"(first at row 1: {first})" in message


def test_unknown_event_types_and_unknown_items_are_counted_drops(write_tables):
  events = GOOD_EVENTS + [("u1", "a", "click", T0), ("u1", "b", "click", T0),
                          ("u2", "zzz", "conversion", T0), ("u2", "a", "purchase", T0)]
  scan = _scan(write_tables(events, GOOD_ITEMS))
  assert scan.dropped_event_types == {"click": 2, "purchase": 1}
  assert scan.dropped_unknown_items == 1
  assert scan.conversions == 2


@pytest.mark.parametrize("items,problem,row", [
    ([("a", ["c1"], [0.0])], "a confidence outside (0, 1]", 0),
    ([("a", ["c1"], [0.5]), ("b", ["c1"], [1.01])], "a confidence outside (0, 1]", 1),
    ([("a", ["c1", "c2"], [0.5])], "a different number of confidences than categories", 0),
    ([("a", [], [])], "no categories or an empty category id", 0),
    ([("a", ["c1"], [0.5]), ("b", ["c1"], [0.5]), ("a", ["c2"], [0.5])],
     "a duplicate item_id", 2),
    ([("a", ["c1"], [0.5]), ("", ["c1"], [0.5])], "an empty item_id", 1),
])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_bad_items_are_errors(write_tables, items, problem, row, fmt):
  folder = write_tables(GOOD_EVENTS, items, fmt=fmt)
  with pytest.raises(InputError) as error:
    input_tables.load_items(input_tables.locate_tables(folder).items)
  message = str(error.value)
  assert message.startswith(f"items.{fmt}: 1 rows have {problem}")
  assert f"(first at row {row}:" in message


def test_users_duplicates_are_errors_and_blank_demographics_unknown(write_tables):
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS, [("u1", "US", ""), ("u2", None, "55+")])
  users = input_tables.load_users(input_tables.locate_tables(folder).users,
                                  f.DEFAULT_DEMOGRAPHIC_COLUMNS)
  assert users == {"u1": ("US", f.UNKNOWN), "u2": (f.UNKNOWN, "55+")}
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS, [("u1", "US", "1"), ("u1", "FR", "2")],
                        folder="dup")
  with pytest.raises(InputError, match=r"users.parquet: 1 rows have a duplicate user_id"):
    input_tables.load_users(input_tables.locate_tables(folder).users,
                            f.DEFAULT_DEMOGRAPHIC_COLUMNS)


def test_configured_demographic_column_must_exist(write_tables):
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS, [("u1", "US", "25-34")])
  with pytest.raises(InputError, match=r"users.parquet: missing column\(s\) gender"):
    input_tables.load_users(input_tables.locate_tables(folder).users, ("country", "gender"))


def test_no_conversions_is_an_error(write_tables):
  with pytest.raises(InputError, match="no conversion events"):
    _scan(write_tables([("u1", "a", "view", T0)], GOOD_ITEMS))


def test_tables_read_through_tensorflow_filesystems(write_tables):
  """A non-local filesystem (TF's ram://, standing in for gs://) reads like a local folder."""
  import tensorflow as tf
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS, [("u1", "US", "25-34")])
  remote = "ram://ctxrec-test-data"
  tf.io.gfile.makedirs(remote)
  for name in os.listdir(folder):
    tf.io.gfile.copy(os.path.join(folder, name), f"{remote}/{name}", overwrite=True)
  tables = input_tables.locate_tables(remote)
  assert tables.events == f"{remote}/events.parquet"
  scan = input_tables.scan_events(tables.events, input_tables.load_items(tables.items))
  assert (scan.rows, scan.conversions) == (3, 2)
  assert input_tables.fingerprint(tables).count("ram://") == 3


# ---- Issue 12: one reader, typed and plausible values, duplicates and drops. ----

def _write_text(folder, name, text, encoding="utf-8"):
  with open(os.path.join(folder, name), "w", encoding=encoding, newline="") as out:
    out.write(text)


def test_csv_follows_rfc_4180_bom_crlf_blank_lines_quoted_fields(write_tables, tmp_path):
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS, fmt="csv")
  lines = ["user_id,item_id,event_type,timestamp", f"u1,\"a\",view,{T0}", "",
           f"\"u1\",a,conversion,{T0 + 60}", f"\"u,2\nx\",b,conversion,{T0 + 120}", "", ""]
  _write_text(folder, "events.csv", "\ufeff" + "\r\n".join(lines))  # ends in a blank line
  scan = _scan(folder)
  assert (scan.rows, scan.views, scan.conversions, scan.users) == (3, 1, 2, 2)
  frames = [frame for _, frame in input_tables.iter_batches(os.path.join(folder, "events.csv"),
                                                              f.EVENTS_COLUMNS)]
  assert list(frames[0][f.USER_ID]) == ["u1", "u1", "u,2\nx"]


def test_categories_are_ordered_by_confidence_primary_first(write_tables):
  primary_first = write_tables(GOOD_EVENTS, [("a", ["c1", "c2", "c3"], [0.9, 0.5, 0.5]),
                                             ("b", ["c2"], [1.0])], folder="sorted")
  shuffled = write_tables(GOOD_EVENTS, [("a", ["c2", "c1", "c3"], [0.5, 0.9, 0.5]),
                                        ("b", ["c2"], [1.0])], folder="shuffled")
  catalogs = [input_tables.load_items(input_tables.locate_tables(d).items)
              for d in (primary_first, shuffled)]
  assert catalogs[0] == catalogs[1]
  assert catalogs[0]["a"] == input_tables.Item(("c1", "c2", "c3"), (0.9, 0.5, 0.5))
  events = [(T0, "conversion", "b"), (T0 + 86400, "view", "a"), (T0 + 86460, "conversion", "a")]
  built = [[(split, example.SerializeToString(deterministic=True))
            for split, example in example_builder.build_user_examples(
                "u1", events, catalog, ("US", "25-34"), SequenceExampleGenConfig(), 0)]
           for catalog in catalogs]
  assert built[0] == built[1]  # the same examples, primary category first in every feature


def test_integer_ids_in_parquet_become_strings(write_tables):
  folder = write_tables([(1, 10, "view", T0), (1, 10, "conversion", T0 + 60),
                         (2, 11, "conversion", T0 + 120)],
                        [(10, ["c1"], [0.9]), (11, ["c2"], [1.0])], [(1, "US", "25-34")])
  tables = input_tables.locate_tables(folder)
  catalog = input_tables.load_items(tables.items)
  assert set(catalog) == {"10", "11"}
  users = input_tables.load_users(tables.users, f.DEFAULT_DEMOGRAPHIC_COLUMNS)
  assert users == {"1": ("US", "25-34")}
  scan = input_tables.scan_events(tables.events, catalog, users)
  assert (scan.conversions, scan.users, scan.users_without_users_row,
          scan.conversions_without_users_row) == (2, 2, 1, 1)


def test_float_ids_are_an_error_naming_the_type(write_tables):
  folder = write_tables(GOOD_EVENTS, [(1.5, ["c1"], [0.9])])
  with pytest.raises(InputError, match="items.parquet: column item_id has type double"):
    input_tables.load_items(input_tables.locate_tables(folder).items)


def test_arrow_timestamp_columns_are_epoch_seconds(write_tables):
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS)
  path = os.path.join(folder, "events.parquet")
  frame = pd.read_parquet(path)
  frame[f.TIMESTAMP] = pd.to_datetime(frame[f.TIMESTAMP] * 1000 + 999, unit="ms", utc=True)
  frame.to_parquet(path)
  scan = _scan(folder)
  assert (scan.min_timestamp, scan.max_timestamp) == (T0, T0 + 120)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_millisecond_timestamps_need_the_unit_and_are_floored(write_tables, fmt):
  events = [(u, i, kind, t * 1000 + 999) for u, i, kind, t in GOOD_EVENTS]
  folder = write_tables(events, GOOD_ITEMS, fmt=fmt)
  with pytest.raises(InputError) as error:
    _scan(folder)
  assert (f"events.{fmt}: 3 rows have a timestamp in milliseconds, not seconds (pass "
          f"--timestamp-unit ms) in column timestamp (first at row 0:") in str(error.value)
  tables = input_tables.locate_tables(folder)
  scan = input_tables.scan_events(tables.events, input_tables.load_items(tables.items),
                                  rules=input_tables.TimestampRules(unit="ms"))
  assert (scan.min_timestamp, scan.max_timestamp) == (T0, T0 + 120)


def test_seconds_read_as_milliseconds_are_an_error_with_the_hint(write_tables):
  tables = input_tables.locate_tables(write_tables(GOOD_EVENTS, GOOD_ITEMS))
  with pytest.raises(InputError, match="3 rows have a timestamp in seconds, not milliseconds "
                     r"\(drop --timestamp-unit ms\)"):
    input_tables.scan_events(tables.events, input_tables.load_items(tables.items),
                             rules=input_tables.TimestampRules(unit="ms"))


@pytest.mark.parametrize("bad,problem", [
    (32503683600, "a timestamp after"), (0, "a timestamp before 1990-01-01"),
    (-5, "a timestamp that is not a non-negative integer")])
def test_implausible_timestamps_are_errors_with_count_and_first_row(write_tables, bad, problem):
  events = GOOD_EVENTS + [("u2", "a", "conversion", bad), ("u3", "a", "view", bad)]
  with pytest.raises(InputError) as error:
    _scan(write_tables(events, GOOD_ITEMS))
  assert f"events.parquet: 2 rows have {problem}" in str(error.value)
  assert f"(first at row 3: {bad})" in str(error.value)


def test_plausible_window_is_configurable(write_tables):
  tables = input_tables.locate_tables(write_tables(GOOD_EVENTS, GOOD_ITEMS))
  rules = input_tables.TimestampRules(now=T0 - 1000, future_slack=0)
  with pytest.raises(InputError, match="3 rows have a timestamp after 2025-12-31"):
    input_tables.scan_events(tables.events, input_tables.load_items(tables.items), rules=rules)


def test_identical_duplicates_are_dropped_and_counted_once(write_tables):
  events = GOOD_EVENTS + GOOD_EVENTS[1:] + [GOOD_EVENTS[2], ("u2", "b", "conversion", T0 + 121)]
  scan = _scan(write_tables(events, GOOD_ITEMS))
  assert scan.duplicates == 3
  assert (scan.views, scan.conversions) == (1, 3)
  assert scan.conversions_by_day == {T0 // 86400: 3}
  assert scan.drop_counts()[input_tables.DROPPED_DUPLICATES] == 3


@pytest.mark.parametrize("items,problem", [
    ([("a", ["c1", None], [0.9, 0.5])], "no categories or an empty category id"),
    ([("a", ["c1", "c2"], [0.9, None])], "a null or empty confidence in the list"),
])
def test_nulls_inside_list_columns_are_errors(write_tables, items, problem):
  folder = write_tables(GOOD_EVENTS, items)
  with pytest.raises(InputError, match=f"items.parquet: 1 rows have {problem}"):
    input_tables.load_items(input_tables.locate_tables(folder).items)


def test_empty_csv_list_elements_are_errors(write_tables):
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS, fmt="csv")
  _write_text(folder, "items.csv", "item_id,categories,confidences\na,c1;;c2,0.9;0.4;0.1\n"
              "b,c2,1.0;\n")
  with pytest.raises(InputError) as error:
    input_tables.load_items(input_tables.locate_tables(folder).items)
  assert "items.csv: 1 rows have no categories or an empty category id" in str(error.value)
  assert "items.csv: 1 rows have a null or empty confidence in the list" in str(error.value)


@pytest.mark.parametrize("name,content,message", [
    ("events.csv", b"", "events.csv: the file is empty (0 bytes)"),
    ("events.parquet", b"", "events.parquet: the file is empty (0 bytes)"),
    ("events.parquet", b"PAR1 not really", "events.parquet: cannot be read as Parquet"),
    ("events.csv", b"user_id,item_id,event_type,timestamp\nu1,a,view\n",
     "events.csv: cannot be read as CSV: CSV parse error"),
    ("events.csv", b"u1,a,view,1767225600\n", "events.csv: missing column(s) user_id"),
])
def test_unreadable_tables_are_errors_naming_the_file(write_tables, name, content, message):
  folder = write_tables(GOOD_EVENTS, GOOD_ITEMS)
  os.remove(os.path.join(folder, "events.parquet"))
  with open(os.path.join(folder, name), "wb") as out:
    out.write(content)
  with pytest.raises(InputError) as error:
    _scan(folder)
  assert str(error.value).startswith(message)


def test_drops_that_remove_every_view_or_user_match_are_warnings(write_tables):
  events = GOOD_EVENTS[1:] + [("u1", "zzz", "view", T0)]
  folder = write_tables(events, GOOD_ITEMS, [("someone", "US", "25-34")])
  tables = input_tables.locate_tables(folder)
  users = input_tables.load_users(tables.users, f.DEFAULT_DEMOGRAPHIC_COLUMNS)
  scan = input_tables.scan_events(tables.events, input_tables.load_items(tables.items), users)
  assert (scan.users, scan.users_without_users_row) == (2, 2)
  warnings = input_tables.drop_warnings(scan, tables.users)
  assert len(warnings) == 2
  assert "all 1 view events were dropped" in warnings[0]
  assert "no user of the events has a row in users.parquet" in warnings[1]
