"""Checks a run's inputs and output folder before anything is written, and undoes a rejected run.

`check_inputs` runs every check that needs no pipeline: the output folder, the tables (located,
items, users, events with plausible timestamps, drops counted) and the time split; a run that
fails them creates nothing under --out. `OutputSnapshot` remembers what --out held, so a
rejection inside the pipeline removes what the run created, and only that.
"""
import dataclasses
import datetime
import json
import logging
import os
import shutil
from typing import Any, Dict, Optional, Set, Tuple, Type

from ctxrec.components.anomalies_gate.executor import DataAnomaliesError
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen import split_plan
from ctxrec.components.sequence_example_gen.input_tables import EventsScan, InputError, TableFiles
from ctxrec.pipeline.config import PipelineConfig

INPUT_SUMMARY_FILE = "input_summary.json"  # under OUT/report
DROPS = "drops"  # the drop counts' key in input_summary.json and summary.json
REJECTIONS = (InputError, DataAnomaliesError)  # the pipeline refused the data: clean up


@dataclasses.dataclass(frozen=True)
class InputSummary:
  """What the checks learned: the tables, the events scan, the planned split, and warnings."""
  tables: TableFiles
  scan: EventsScan
  split: split_plan.SplitPlan
  warnings: Tuple[str, ...]

  def drops(self) -> Dict[str, Any]:
    """Every drop count (README "Bad input"), and the dropped event types by value."""
    return {**self.scan.drop_counts(),
            "dropped_event_type_values": dict(sorted(self.scan.dropped_event_types.items()))}

  def to_json(self) -> Dict[str, Any]:
    scan = self.scan
    return {"tables": dataclasses.asdict(self.tables), "rows": scan.rows, "views": scan.views,
            "conversions": scan.conversions, "users": scan.users,
            "first_event": _date(scan.min_timestamp), "last_event": _date(scan.max_timestamp),
            "eval_start_date": self.split.eval_start_date,
            "train_conversions": self.split.train_examples,
            "eval_conversions": self.split.eval_examples,
            DROPS: self.drops(), "warnings": list(self.warnings)}


def _date(seconds: Optional[int]) -> Optional[str]:
  if seconds is None:
    return None
  return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()


def check_output_dir(path: str) -> None:
  """--out must be a folder, or absent with a folder (or nothing yet) above it."""
  probe = os.path.abspath(path)
  while not os.path.exists(probe) and os.path.dirname(probe) != probe:
    probe = os.path.dirname(probe)
  if os.path.exists(probe) and not os.path.isdir(probe):
    where = "names a file" if probe == os.path.abspath(path) else f"is under the file {probe}"
    raise InputError(f"{path}: --out {where}, not a folder; pass a new or existing folder")


def check_inputs(config: PipelineConfig) -> InputSummary:
  """Every check that needs no pipeline, reading only: an InputError names the file and the
  problem before anything exists under --out."""
  check_output_dir(config.output_dir)
  tables = input_tables.locate_tables(config.data_dir)
  scan, plan = split_plan.check_tables(config.example_gen, tables)
  return InputSummary(tables, scan, plan,
                      tuple(input_tables.drop_warnings(scan, tables.users)))


def write_input_summary(summary: InputSummary, report_dir: str) -> str:
  """Writes OUT/report/input_summary.json; returns its path."""
  os.makedirs(report_dir, exist_ok=True)
  path = os.path.join(report_dir, INPUT_SUMMARY_FILE)
  with open(path, "w") as out:
    json.dump(summary.to_json(), out, indent=2, sort_keys=True)
    out.write("\n")
  return path


def find_in_chain(exc: Optional[BaseException],
                  types: Tuple[Type[BaseException], ...]) -> Optional[BaseException]:
  """The first exception of `types` in an exception's chain (TFX and Beam wrap executor errors)."""
  seen = set()
  while exc is not None and id(exc) not in seen:
    if isinstance(exc, types):
      return exc
    seen.add(id(exc))
    exc = exc.__cause__ or exc.__context__
  return None


def _tree(root: str) -> Set[str]:
  """Every file and folder under root, relative to it."""
  paths = set()
  for folder, dirnames, filenames in os.walk(root):
    for name in dirnames + filenames:
      paths.add(os.path.relpath(os.path.join(folder, name), root))
  return paths


class OutputSnapshot:
  """What --out held before a run, so a rejected run can remove exactly what it added (files it
  changed in place, such as an existing MLMD store, stay as they are)."""

  def __init__(self, root: str):
    self._root = os.path.abspath(root)
    self._existed = os.path.isdir(self._root)
    self._before = _tree(self._root) if self._existed else set()

  def remove_new(self) -> None:
    """Removes every file and folder the run created under --out (all of it, if it was new)."""
    if not self._existed:
      _remove(self._root)
      return
    for folder, dirnames, filenames in os.walk(self._root):
      for name in list(dirnames) + filenames:
        path = os.path.join(folder, name)
        if os.path.relpath(path, self._root) not in self._before:
          _remove(path)
          if name in dirnames:
            dirnames.remove(name)


def _remove(path: str) -> None:
  _close_logs_under(path)
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path, ignore_errors=True)
  elif os.path.lexists(path):
    os.remove(path)


def _close_logs_under(path: str) -> None:
  """Detaches log files (the run log) about to be removed, so nothing writes to them."""
  root = logging.getLogger()
  for handler in list(root.handlers):
    name = getattr(handler, "baseFilename", None)
    if name and (name == path or name.startswith(path + os.sep)):
      root.removeHandler(handler)
      handler.close()
