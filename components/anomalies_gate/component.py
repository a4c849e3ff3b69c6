"""AnomaliesGate: stops the pipeline when ExampleValidator found anomalies (TFX only records them)."""
from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter

from ctxrec.components.anomalies_gate import executor


class AnomaliesGateSpec(types.ComponentSpec):
  PARAMETERS = {}
  INPUTS = {executor.ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies)}
  OUTPUTS = {}


class AnomaliesGate(base_component.BaseComponent):
  """Fails with a message naming each feature and anomaly; later stages run after it."""

  SPEC_CLASS = AnomaliesGateSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, anomalies: types.BaseChannel):
    super().__init__(spec=AnomaliesGateSpec(anomalies=anomalies))
