"""Names of IndexBuilder's parameters, inputs, output and output properties."""
INPUT_BASE = "input_base"
INPUT_FINGERPRINT = "input_fingerprint"
INDEX_ROOT = "index_root"
CONFIG = "config"
PUSHED_MODEL = "pushed_model"
EXAMPLES = "examples"
HISTORY_STATES = "history_states"
INDEX = "index"
# CatalogIndex properties:
MODEL_VERSION = "model_version"
BLESSED = "blessed"
PUBLISHED_DIR = "published_dir"  # empty when the index was not published
REASON = "reason"
