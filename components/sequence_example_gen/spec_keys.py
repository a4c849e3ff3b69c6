"""Names of SequenceExampleGen's parameters, outputs and output properties."""
INPUT_BASE = "input_base"
INPUT_FINGERPRINT = "input_fingerprint"
HISTORY_LENGTH = "history_length"
SESSION_WINDOW_SECONDS = "session_window_seconds"
EVAL_DAYS = "eval_days"
EVAL_START_DATE = "eval_start_date"  # also the examples' property holding the day used
DEMOGRAPHIC_COLUMNS = "demographic_columns"
EXAMPLES = "examples"
EXAMPLE_COUNT_PREFIX = "examples_"  # examples' int properties: examples_train, examples_eval


def example_count(split: str) -> str:
  return f"{EXAMPLE_COUNT_PREFIX}{split}"
