"""Names of ExamplesSchemaGen's parameters and output, shared by its spec and executor."""
DEMOGRAPHIC_COLUMNS = "demographic_columns"
BASE_SCHEMA = "base_schema"
PACKAGED_SCHEMA_SHA256 = "packaged_schema_sha256"
SCHEMA = "schema"
SCHEMA_FILE = "schema.pbtxt"  # the file name TFX's own schema components write
