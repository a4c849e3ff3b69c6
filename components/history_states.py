"""The HistoryStates artifact: one day's history state per user, written by HistoryStateInferrer
and loaded into a state store by StatePublisher.

Layout under the artifact's URI:
  states-SSSSS-of-NNNNN.parquet   user_id (string), state (fixed_size_list<float32>[dimension]),
                                  model_version (string), serving_date (string): every user
                                  with a history before the serving date
  cold_start.parquet              the same columns, one row under COLD_START_KEY: the state of
                                  an empty history, served to every user without one
Custom properties: model_version, serving_date, dimension, users (rows of the states files).
"""
import os
from typing import Iterator, List, Sequence, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf
from tfx import types

from ctxrec.components.sequence_example_gen.input_tables import open_binary
from ctxrec.serving.feature_store import StatesVersion
from ctxrec.transform import features as f


class HistoryStates(types.Artifact):
  """Daily history states of one model version for one serving date."""
  TYPE_NAME = "ctxrec.HistoryStates"  # also its import path, as KFP v2 needs for custom types


COLD_START_KEY = ""  # the empty user id: the input contract forbids it for a real user
STATE = "state"
MODEL_VERSION = "model_version"
SERVING_DATE = "serving_date"
DIMENSION = "dimension"
USERS = "users"
_STATES_PREFIX = "states"
_COLD_START_FILE = "cold_start.parquet"
_SUFFIX = ".parquet"


def schema(dimension: int) -> pa.Schema:
  return pa.schema([(f.USER_ID, pa.string()), (STATE, pa.list_(pa.float32(), dimension)),
                    (MODEL_VERSION, pa.string()), (SERVING_DATE, pa.string())])


def to_table(user_ids: Sequence[str], states: np.ndarray, version: StatesVersion) -> pa.Table:
  """Rows of the states files for a batch of users."""
  states = np.ascontiguousarray(states, dtype=np.float32)
  count, dimension = states.shape
  return pa.Table.from_arrays(
      [pa.array(user_ids, pa.string()),
       pa.FixedSizeListArray.from_arrays(pa.array(states.reshape(-1)), dimension),
       pa.array([version.model_version] * count, pa.string()),
       pa.array([version.serving_date] * count, pa.string())],
      schema=schema(dimension))


def write_states(artifact: types.Artifact, dimension: int) -> beam.PTransform:
  """Writes tables of `to_table` as the artifact's sharded states files."""
  return beam.io.WriteToParquetBatched(os.path.join(artifact.uri, _STATES_PREFIX),
                                       schema=schema(dimension), file_name_suffix=_SUFFIX)


def write_cold_start(artifact: types.Artifact, state: np.ndarray, version: StatesVersion) -> None:
  buffer = pa.BufferOutputStream()
  pq.write_table(to_table([COLD_START_KEY], state[np.newaxis], version), buffer)
  with tf.io.gfile.GFile(os.path.join(artifact.uri, _COLD_START_FILE), "wb") as handle:
    handle.write(buffer.getvalue().to_pybytes())


def set_properties(artifact: types.Artifact, version: StatesVersion, dimension: int,
                   users: int) -> None:
  artifact.set_string_custom_property(MODEL_VERSION, version.model_version)
  artifact.set_string_custom_property(SERVING_DATE, version.serving_date)
  artifact.set_int_custom_property(DIMENSION, dimension)
  artifact.set_int_custom_property(USERS, users)


def version_of(artifact: types.Artifact) -> StatesVersion:
  return StatesVersion(artifact.get_string_custom_property(MODEL_VERSION),
                       artifact.get_string_custom_property(SERVING_DATE))


def state_files(artifact: types.Artifact) -> List[str]:
  return sorted(tf.io.gfile.glob(os.path.join(artifact.uri, f"{_STATES_PREFIX}*{_SUFFIX}")))


def _read(path: str, batch_rows: int) -> Iterator[Tuple[List[str], np.ndarray]]:
  with open_binary(path) as handle:
    for batch in pq.ParquetFile(handle).iter_batches(batch_size=batch_rows):
      states = batch.column(STATE)
      dimension = states.type.list_size
      values = states.flatten().to_numpy(zero_copy_only=False).reshape(-1, dimension)
      yield batch.column(f.USER_ID).to_pylist(), values


def read_states(artifact: types.Artifact,
                batch_rows: int = 4096) -> Iterator[Tuple[List[str], np.ndarray]]:
  """(user ids, states [n, dimension]) in bounded batches, shard after shard."""
  for path in state_files(artifact):
    yield from _read(path, batch_rows)


def read_cold_start(artifact: types.Artifact) -> np.ndarray:
  path = os.path.join(artifact.uri, _COLD_START_FILE)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"{artifact.uri}: no {_COLD_START_FILE}; the HistoryStates artifact "
                            f"is incomplete: rerun HistoryStateInferrer")
  rows = [(user_id, state) for user_ids, states in _read(path, 16)
          for user_id, state in zip(user_ids, states)]
  if [user_id for user_id, _ in rows] != [COLD_START_KEY]:
    raise ValueError(f"{path}: expected one row under the reserved key {COLD_START_KEY!r}; "
                     f"rerun HistoryStateInferrer")
  return rows[0][1]
