"""Names of SequenceExampleGen's parameters, outputs and output properties."""
INPUT_BASE = "input_base"
INPUT_FINGERPRINT = "input_fingerprint"
CONFIG = "config"
EVAL_START_DATE = "eval_start_date"  # the examples' property holding the first eval day
TIMESTAMP_UNIT = "timestamp_unit"  # the examples' property: the unit the events were read in
EXAMPLES = "examples"
EXAMPLE_COUNT_PREFIX = "examples_"  # examples' int properties: examples_train, examples_eval


def example_count(split: str) -> str:
  return f"{EXAMPLE_COUNT_PREFIX}{split}"
