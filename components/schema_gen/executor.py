"""ExamplesSchemaGen executor: builds the examples' schema from the code it runs with."""
import json
import logging
import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from ctxrec.components.schema_gen import spec_keys as keys
from ctxrec.pipeline import schema


class Executor(base_executor.BaseExecutor):
  """Writes schema.pbtxt: the packaged (or given) base schema plus the demographic features."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    columns = json.loads(exec_properties[keys.DEMOGRAPHIC_COLUMNS])
    base_text = exec_properties.get(keys.BASE_SCHEMA)
    base = text_format.Parse(base_text, schema_pb2.Schema()) if base_text else None
    examples_schema = schema.examples_schema(columns, base)
    output = artifact_utils.get_single_uri(output_dict[keys.SCHEMA])
    path = os.path.join(output, keys.SCHEMA_FILE)
    io_utils.write_pbtxt_file(path, examples_schema)
    logging.info("ExamplesSchemaGen: wrote %s (%d features)", path, len(examples_schema.feature))
