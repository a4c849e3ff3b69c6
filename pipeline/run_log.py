"""Keeps the console readable during a run: full logs go to a file, progress to stderr."""
import logging
import os
import sys
import time

from ctxrec import progress

_PROGRESS_PREFIX = "Component "  # LocalDagRunner: "Component X is running." / "... is finished."


class _ProgressHandler(logging.Handler):
  """Echoes LocalDagRunner's per-component start/finish lines, with elapsed time, and the
  progress lines of long steps."""

  def __init__(self):
    super().__init__(logging.INFO)
    self._started = {}

  def emit(self, record: logging.LogRecord) -> None:
    message = record.getMessage()
    if record.name == progress.LOGGER_NAME:
      print(f"[ctxrec]   {message}", file=sys.stderr, flush=True)
      return
    if not message.startswith(_PROGRESS_PREFIX):
      return
    name = message[len(_PROGRESS_PREFIX):].split(" ", 1)[0]
    if message.endswith("is running."):
      self._started[name] = time.time()
      print(f"[ctxrec] {name} ...", file=sys.stderr, flush=True)
    elif message.endswith("is finished."):
      elapsed = time.time() - self._started.get(name, time.time())
      print(f"[ctxrec] {name} done ({elapsed:.1f}s)", file=sys.stderr, flush=True)


# Warnings TFX/TF emit on every run that a user can do nothing about (still in the log file).
_KNOWN_NOISE = ("ArtifactQuery.property_predicate is not supported",
                "Skipping full serialization of TF-Keras layer",
                "arguments contain non-serializable objects")


def _quiet_known_noise(record: logging.LogRecord) -> bool:
  message = record.getMessage()
  return not any(noise in message for noise in _KNOWN_NOISE)


def attach(output_dir: str) -> str:
  """Sends INFO logs to OUTPUT/logs/pipeline.log and progress lines to stderr; returns the path."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  path = os.path.join(output_dir, "logs", "pipeline.log")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  absl_logging.set_verbosity(absl_logging.INFO)
  absl_logging.get_absl_handler().setLevel(logging.ERROR)  # errors still reach the console
  file_handler = logging.FileHandler(path)
  file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
  root = logging.getLogger()
  root.setLevel(logging.INFO)
  for name in ("", "tensorflow"):  # console handlers that imported libraries installed
    for handler in logging.getLogger(name).handlers:
      handler.setLevel(logging.WARNING)
      handler.addFilter(_quiet_known_noise)
  root.addHandler(file_handler)
  root.addHandler(_ProgressHandler())
  return path
