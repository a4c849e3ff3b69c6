"""The component passes every config field to the executor and names its output."""
from tfx import types
from tfx.types import standard_artifacts

from ctxrec.components.pseudo_context import spec_keys as keys
from ctxrec.components.pseudo_context.component import PseudoContextAugmenter
from ctxrec.components.pseudo_context.config import MODE_ITEM, PseudoContextConfig


def test_config_becomes_execution_parameters():
  config = PseudoContextConfig(rate=1, p_substitute=0.5, mode=MODE_ITEM, seed=9)
  component = PseudoContextAugmenter(types.Channel(type=standard_artifacts.Examples), config)
  assert component.exec_properties == {
      keys.RATE: 1.0, keys.P_SUBSTITUTE: 0.5, keys.CONFIDENCE_JITTER: 0.2,
      keys.P_DROP_SECONDARY: 0.3, keys.MODE: MODE_ITEM, keys.SEED: 9}
  assert component.outputs[keys.AUGMENTED_EXAMPLES].type == standard_artifacts.Examples
