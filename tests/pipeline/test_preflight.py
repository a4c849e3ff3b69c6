"""Checks before a run writes anything, and the clean-up of a run rejected inside the pipeline."""
import logging
import os

import pytest

from ctxrec.components.sequence_example_gen.input_tables import InputError
from ctxrec.pipeline import local_runner, preflight
from ctxrec.pipeline.config import PipelineConfig


def _listing(root):
  return sorted(os.path.relpath(os.path.join(d, n), root)
                for d, dirs, files in os.walk(root) for n in dirs + files)


def test_out_must_be_a_folder_or_absent(tmp_path):
  preflight.check_output_dir(str(tmp_path / "new" / "deeper"))
  preflight.check_output_dir(str(tmp_path))
  (tmp_path / "file").write_text("x")
  with pytest.raises(InputError, match="file: --out names a file, not a folder"):
    preflight.check_output_dir(str(tmp_path / "file"))
  with pytest.raises(InputError, match="--out is under the file"):
    preflight.check_output_dir(str(tmp_path / "file" / "out"))


def test_snapshot_removes_only_what_the_run_added(tmp_path):
  out = tmp_path / "out"
  (out / "pipeline_root" / "Old").mkdir(parents=True)
  (out / "pipeline_root" / "Old" / "a.txt").write_text("kept")
  (out / "metadata.sqlite").write_text("old")
  before = _listing(out)
  snapshot = preflight.OutputSnapshot(str(out))
  (out / "pipeline_root" / "New" / "1").mkdir(parents=True)
  (out / "pipeline_root" / "New" / "1" / "b").write_text("new")
  (out / "pipeline_root" / "Old" / "c.txt").write_text("new")
  (out / "metadata.sqlite").write_text("changed")
  snapshot.remove_new()
  assert _listing(out) == before
  assert (out / "metadata.sqlite").read_text() == "changed"  # changed in place: kept


def test_a_new_out_folder_is_removed_whole_with_its_run_log(tmp_path):
  out = tmp_path / "out"
  snapshot = preflight.OutputSnapshot(str(out))
  (out / "logs").mkdir(parents=True)
  handler = logging.FileHandler(str(out / "logs" / "pipeline.log"))
  logging.getLogger().addHandler(handler)
  snapshot.remove_new()
  assert not out.exists()
  assert handler not in logging.getLogger().handlers


def test_a_rejection_inside_the_pipeline_leaves_out_as_it_was(tiny_data, tmp_path, monkeypatch):
  out = tmp_path / "out"
  out.mkdir()
  (out / "earlier.txt").write_text("x")
  attached = []

  def rejected_run(config, checked):
    os.makedirs(os.path.join(config.output_dir, "pipeline_root", "SequenceExampleGen"))
    raise RuntimeError("wrapped") from InputError("events.parquet: rejected inside")

  monkeypatch.setattr(local_runner, "_run_training", rejected_run)
  config = PipelineConfig(data_dir=tiny_data, output_dir=str(out))
  with pytest.raises(RuntimeError):
    local_runner.run_local(config, on_checked=attached.append)
  assert _listing(out) == ["earlier.txt"]
  assert attached and attached[0].scan.conversions > 0


def test_input_summary_holds_every_drop(tiny_data, tmp_path):
  checked = preflight.check_inputs(PipelineConfig(data_dir=tiny_data,
                                                  output_dir=str(tmp_path / "out")))
  path = preflight.write_input_summary(checked, str(tmp_path / "report"))
  import json  # pylint: disable=g-import-not-at-top
  with open(path) as handle:
    summary = json.load(handle)
  assert set(summary[preflight.DROPS]) == {
      "dropped_event_types", "dropped_unknown_items", "dropped_duplicates",
      "users_without_users_row", "conversions_without_users_row", "dropped_event_type_values"}
  assert summary["conversions"] == summary["train_conversions"] + summary["eval_conversions"]
