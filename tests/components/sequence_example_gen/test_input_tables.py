"""Every bad-input case of the input contract: a clear error or a counted drop."""
import os

import pandas as pd
import pytest

from ctxrec.components.sequence_example_gen import input_tables
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
