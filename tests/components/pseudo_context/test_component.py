"""The component passes the whole config to the executor as one JSON parameter and names its
output."""
import pytest
from tfx import types
from tfx.types import standard_artifacts

from ctxrec.components.pseudo_context import spec_keys as keys
from ctxrec.components.pseudo_context.component import PseudoContextAugmenter
from ctxrec.components.pseudo_context.config import MODE_ITEM, PseudoContextConfig
from ctxrec.components.pseudo_context.executor import config_from_exec_properties


@pytest.mark.parametrize("config", [
    PseudoContextConfig(),  # probabilities left to fitting (None) survive the trip as None
    PseudoContextConfig(use_real_context=False, rate=0.5, p_other_category=0.0,
                        p_substitute=1.0, confidence_jitter=0.1, p_drop_secondary=0.0,
                        mode=MODE_ITEM, seed=9)])
def test_config_travels_as_one_json_parameter(config):
  component = PseudoContextAugmenter(types.Channel(type=standard_artifacts.Examples), config)
  assert set(component.exec_properties) == {keys.CONFIG}
  assert PseudoContextConfig.from_json(component.exec_properties[keys.CONFIG]) == config
  assert config_from_exec_properties(component.exec_properties) == config
  assert component.outputs[keys.AUGMENTED_EXAMPLES].type == standard_artifacts.Examples
