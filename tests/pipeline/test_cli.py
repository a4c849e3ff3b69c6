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


@pytest.mark.slow
def test_bad_input_exits_non_zero_with_a_message_and_leaves_no_examples(write_tables, tmp_path,
                                                                       capsys):
  data = write_tables([("u1", "a", "conversion", T0), ("", "a", "conversion", T0 + 86400)])
  out = tmp_path / "out"
  assert cli.main(["run", "--data", data, "--out", str(out)]) == cli.EXIT_USAGE
  err = capsys.readouterr().err
  assert "ctxrec run: error: events.parquet: 1 rows have an empty user_id" in err
  assert "(first at row 1" in err
  assert "Traceback" not in err
  examples = out / "pipeline_root" / "SequenceExampleGen" / "examples"
  left = [p for p in examples.rglob("*") if p.is_file()] if examples.exists() else []
  assert left == []


def test_wrong_data_folder_is_a_one_line_error(tmp_path, capsys):
  assert cli.main(["run", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
  assert "no such directory" in capsys.readouterr().err


def test_bad_eval_start_date_is_a_one_line_error(write_tables, tmp_path, capsys):
  data = write_tables([("u1", "a", "conversion", T0)])
  code = cli.main(["run", "--data", data, "--out", str(tmp_path / "o"),
                   "--eval-start-date", "2026-13-01"])
  assert code == 2 and "is not a YYYY-MM-DD date" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "o")
