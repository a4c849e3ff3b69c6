"""The `ctxrec` command as a user meets it: help, exit codes and messages."""
import os
import subprocess
import sys

import pytest

from ctxrec.pipeline import cli

T0 = 1767225600


def test_help_lists_the_subcommands():
  result = subprocess.run([sys.executable, "-m", "ctxrec.pipeline.cli", "--help"],
                          capture_output=True, text=True, check=True)
  assert "generate" in result.stdout and "run" in result.stdout


def test_building_the_parser_does_not_import_tensorflow():
  """Every command builds the whole parser first: `ctxrec generate` or `--help` must not wait
  for TensorFlow's import (seconds)."""
  code = ("import sys; from ctxrec.pipeline import cli; cli._parser(); "
          "print('tensorflow' in sys.modules)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert result.stdout.strip() == "False"


def test_bad_input_exits_non_zero_with_a_message_and_writes_nothing(write_tables, tmp_path,
                                                                   capsys):
  data = write_tables([("u1", "a", "conversion", T0), ("", "a", "conversion", T0 + 86400)])
  out = tmp_path / "out"
  assert cli.main(["run", "--data", data, "--out", str(out)]) == cli.EXIT_USAGE
  err = capsys.readouterr().err
  assert "ctxrec run: error: events.parquet: 1 rows have an empty user_id" in err
  assert "(first at row 1" in err
  assert "Traceback" not in err
  assert not out.exists()  # checked before the run log or MLMD is created


def test_run_help_lists_the_input_options():
  result = subprocess.run([sys.executable, "-m", "ctxrec.pipeline.cli", "run", "--help"],
                          capture_output=True, text=True, check=True)
  assert "--timestamp-unit {s,ms}" in result.stdout and "--check-only" in result.stdout


def test_check_only_prints_the_drops_and_writes_nothing(tiny_data, tmp_path, capsys):
  out = tmp_path / "out"
  assert cli.main(["run", "--data", tiny_data, "--out", str(out), "--check-only"]) == 0
  printed = capsys.readouterr().out
  assert "the input tables pass the checks" in printed
  assert "drops: dropped_event_types=0, dropped_unknown_items=0, dropped_duplicates=0" in printed
  assert not out.exists()


def test_wrong_data_folder_is_a_one_line_error(tmp_path, capsys):
  assert cli.main(["run", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
  assert "no such directory" in capsys.readouterr().err


def test_bad_eval_start_date_is_a_one_line_error(write_tables, tmp_path, capsys):
  data = write_tables([("u1", "a", "conversion", T0)])
  code = cli.main(["run", "--data", data, "--out", str(tmp_path / "o"),
                   "--eval-start-date", "2026-13-01"])
  assert code == 2 and "is not a YYYY-MM-DD date" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "o")
