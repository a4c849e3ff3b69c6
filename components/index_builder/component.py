"""IndexBuilder: the catalog's ScaNN index for one pushed model, gated by recall."""
from typing import Optional, Union

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration.data_types import RuntimeParameter
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from ctxrec.components.history_states import HistoryStates
from ctxrec.components.index_builder import executor
from ctxrec.components.index_builder import spec_keys as keys
from ctxrec.components.index_builder.config import IndexBuilderConfig


class CatalogIndex(types.Artifact):
  """A built index (manifest, ScaNN files, item ids, tuning.json) and where it was published."""
  TYPE_NAME = "ctxrec.CatalogIndex"  # also its import path, as KFP v2 needs for custom types


class IndexBuilderSpec(types.ComponentSpec):
  PARAMETERS = {
      keys.INPUT_BASE: ExecutionParameter(type=str),
      keys.INPUT_FINGERPRINT: ExecutionParameter(type=str, optional=True),
      keys.INDEX_ROOT: ExecutionParameter(type=str),
      keys.CONFIG: ExecutionParameter(type=str),
  }
  INPUTS = {
      keys.PUSHED_MODEL: ChannelParameter(type=standard_artifacts.PushedModel),
      keys.EXAMPLES: ChannelParameter(type=standard_artifacts.Examples, optional=True),
      keys.HISTORY_STATES: ChannelParameter(type=HistoryStates, optional=True),
  }
  OUTPUTS = {keys.INDEX: ChannelParameter(type=CatalogIndex)}


class IndexBuilder(base_component.BaseComponent):
  """Embeds the items table (as of the run) with the pushed model's `embed_items`, builds the
  ScaNN searcher the catalog size calls for, tunes it against exact search on real user
  embeddings (eval requests from `examples`, or published users from `history_states`), and
  publishes it to `index_root`/<model_version>/ only when recall@100 reaches the threshold.
  A model the Pusher did not push gets no index; an unchanged catalog keeps its index.
  """

  SPEC_CLASS = IndexBuilderSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, pushed_model: types.BaseChannel, input_base: Union[str, RuntimeParameter],
               index_root: str, examples: Optional[types.BaseChannel] = None,
               history_states: Optional[types.BaseChannel] = None,
               config: IndexBuilderConfig = IndexBuilderConfig(),
               input_fingerprint: Optional[str] = None):
    if examples is None and history_states is None:
      raise ValueError("IndexBuilder needs examples or history_states to draw queries from")
    super().__init__(spec=IndexBuilderSpec(
        pushed_model=pushed_model, examples=examples, history_states=history_states,
        input_base=input_base, input_fingerprint=input_fingerprint, index_root=index_root,
        config=config.to_json(), index=types.Channel(type=CatalogIndex)))
