"""Where long steps report progress: `ctxrec` echoes this logger on the console (run_log.py),
every record also reaches the run's log file."""
import logging

LOGGER_NAME = "ctxrec.progress"


def report(message: str, *args) -> None:
  logging.getLogger(LOGGER_NAME).info(message, *args)
