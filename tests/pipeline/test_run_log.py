"""The run log: everything to the file, component progress and real warnings to the console."""
import logging

from ctxrec.pipeline import run_log


def test_progress_and_noise_filtering(tmp_path, capsys):
  console = logging.StreamHandler()
  root = logging.getLogger()
  root.addHandler(console)
  try:
    path = run_log.attach(str(tmp_path))
    logger = logging.getLogger("tfx.test")
    logger.info("Component Trainer is running.")
    logger.info("Component Trainer is finished.")
    logger.warning("ArtifactQuery.property_predicate is not supported.")
    logger.warning("events: dropped 3 rows with event_type 'click'")
  finally:
    for handler in root.handlers[:]:
      if handler is console or isinstance(handler, logging.FileHandler) or type(
          handler).__name__ == "_ProgressHandler":
        root.removeHandler(handler)
  err = capsys.readouterr().err
  assert "[ctxrec] Trainer ..." in err and "[ctxrec] Trainer done" in err
  assert "dropped 3 rows" in err and "property_predicate" not in err
  logged = open(path).read()
  assert "property_predicate" in logged and "Component Trainer is running." in logged
