"""Typed parameters of HistoryStateInferrer (the serving date is a separate runtime value)."""
import dataclasses

from ctxrec.components.json_config import JsonConfig
from ctxrec.components.sequence_example_gen.config import check_timestamp_unit


@dataclasses.dataclass(frozen=True)
class HistoryStateInferrerConfig(JsonConfig):
  """How the daily job reads the events and batches `encode_history` (RunInference's
  BatchElements bounds)."""
  min_batch_size: int = 256
  max_batch_size: int = 2048
  timestamp_unit: str = "s"  # of integer timestamps, as `ctxrec run --timestamp-unit`

  def __post_init__(self):
    if not 1 <= self.min_batch_size <= self.max_batch_size:
      raise ValueError(f"need 1 <= min_batch_size <= max_batch_size, got {self.min_batch_size} "
                       f"and {self.max_batch_size}")
    check_timestamp_unit(self.timestamp_unit)
