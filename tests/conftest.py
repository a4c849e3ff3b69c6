"""Shared fixtures: hand-built input tables and the generator's tiny world."""
import glob
import os
from typing import Callable, Optional, Sequence

import pandas as pd
import pytest
import redis

from ctxrec.transform import features as f

DAY = 86400
T0 = 1767225600  # 2026-01-01 00:00 UTC


def _write(frame: pd.DataFrame, path: str) -> None:
  if path.endswith(".csv"):
    frame = frame.copy()
    for column in (f.CATEGORIES, f.CONFIDENCES):
      if column in frame:
        frame[column] = [f.CSV_LIST_SEPARATOR.join(str(v) for v in cell) for cell in frame[column]]
    frame.to_csv(path, index=False)
  else:
    frame.to_parquet(path, index=False)


@pytest.fixture
def write_tables(tmp_path) -> Callable:
  """Writes hand-built events/items/users to a folder, as Parquet (default) or CSV."""

  def write(events: Sequence[tuple], items: Optional[Sequence[tuple]] = None,
            users: Optional[Sequence[tuple]] = None, fmt: str = "parquet",
            folder: str = "data") -> str:
    out = os.path.join(tmp_path, folder)
    os.makedirs(out, exist_ok=True)
    if items is None:
      ids = sorted({e[1] for e in events})
      items = [(i, ["c_" + i], [0.9]) for i in ids]
    _write(pd.DataFrame(list(events), columns=list(f.EVENTS_COLUMNS)),
           os.path.join(out, f"{f.EVENTS}.{fmt}"))
    _write(pd.DataFrame(list(items), columns=list(f.ITEMS_COLUMNS)),
           os.path.join(out, f"{f.ITEMS}.{fmt}"))
    if users is not None:
      _write(pd.DataFrame(list(users), columns=[f.USER_ID, *f.DEFAULT_DEMOGRAPHIC_COLUMNS]),
             os.path.join(out, f"{f.USERS}.{fmt}"))
    return out

  return write


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
  """The generator's tiny profile (seed 7), written once per test session."""
  from ctxrec.synthetic import generator, profiles
  out = str(tmp_path_factory.mktemp("tiny"))
  generator.generate(profiles.PROFILES["tiny"], 7, out)
  return out


TINY_TRAIN_STEPS = 250
TINY_SERVING_DATE = "2026-01-25"  # inside the tiny world's 30 days: some events come after it


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_data, tmp_path_factory):
  """The whole training pipeline run once on tiny: (config, run summary)."""
  from ctxrec.pipeline import local_runner
  from ctxrec.pipeline.config import PipelineConfig
  from ctxrec.trainer.config import TrainerConfig
  # The default blessing rule: the model must earn its push (tests/pipeline asserts it).
  config = PipelineConfig(data_dir=tiny_data, output_dir=str(tmp_path_factory.mktemp("tiny_out")),
                          trainer=TrainerConfig(batch_size=128), train_steps=TINY_TRAIN_STEPS)
  return config, local_runner.run_local(config)


def latest_output(config, component: str, output: str) -> str:
  """The newest artifact folder of a component's output under the pipeline root."""
  folders = glob.glob(os.path.join(config.pipeline_root, component, output, "*"))
  assert folders, f"no {component}.{output} under {config.pipeline_root}"
  return max(folders, key=lambda p: int(os.path.basename(p)))


@pytest.fixture(scope="session")
def find_output() -> Callable:
  """latest_output, for tests that run a pipeline of their own."""
  return latest_output


@pytest.fixture(scope="session")
def tiny_output(tiny_pipeline) -> Callable[[str, str], str]:
  """Finds the newest artifact folder of (component, output) of the tiny pipeline run."""
  return lambda component, output: latest_output(tiny_pipeline[0], component, output)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_pipeline) -> str:
  return os.path.join(latest_output(tiny_pipeline[0], "Trainer", "model"), "Format-Serving")


@pytest.fixture(scope="session")
def tiny_pushed_model(tiny_pipeline) -> str:
  """The version directory the tiny training run pushed (SERVING_DIR/<version>)."""
  from ctxrec.serving import model_versions
  return model_versions.resolve_version_dir(tiny_pipeline[0].serving_dir)


@pytest.fixture(scope="session")
def tiny_daily(tiny_data, tiny_pipeline, tiny_pushed_model):
  """The daily pipeline run once on tiny, into the training run's output folder and an SQLite
  store there: (config, daily summary)."""
  from ctxrec.pipeline import config as pipeline_config
  from ctxrec.pipeline import local_runner
  out = tiny_pipeline[0].output_dir
  config = pipeline_config.DailyPipelineConfig(
      data_dir=tiny_data, output_dir=out, model_dir=tiny_pushed_model,
      store_uri=pipeline_config.default_store_uri(out), serving_date=TINY_SERVING_DATE)
  return config, local_runner.run_daily_local(config)


@pytest.fixture(scope="session")
def redis_server():
  """A real redis-server for the session, on a free loopback port (`make setup` installs it)."""
  from ctxrec.serving.feature_store.local_redis import LocalRedis
  with LocalRedis() as server:
    yield server


@pytest.fixture(params=("sqlite", "redis"))
def store_uri(request, tmp_path, redis_server) -> str:
  """A fresh, empty state store of each backend: a test using it runs once per backend."""
  if request.param == "sqlite":
    return f"sqlite:///{os.path.join(tmp_path, 'states.sqlite').lstrip('/')}"
  client = redis.Redis.from_url(redis_server.uri)
  client.flushdb()
  client.close()
  return redis_server.uri


@pytest.fixture
def save_small_model(tmp_path) -> Callable:
  """Saves a small real SavedModel under tmp/models/<version> with the signatures the daily
  pipeline calls, in the exported shapes (not the trained model: fast, with chosen sizes):
  encode_history (zeros), context_head (the normalised state + 1) and embed_items (a one-hot
  of the item id's hash). `without` leaves signatures out, to build a model to refuse."""
  import tensorflow as tf

  def save(version: int = 7, dimension: int = 8, length: int = 3, categories: int = 4,
           views: int = f.DEFAULT_SESSION_VIEWS, without: Sequence[str] = ()) -> str:
    def strings(name, width):
      return tf.TensorSpec([None, width], tf.string, name)

    @tf.function(input_signature=[{f.HISTORY_ITEM_IDS: strings(f.HISTORY_ITEM_IDS, length),
                                   f.HISTORY_CATEGORIES: strings(f.HISTORY_CATEGORIES, length),
                                   f.HISTORY_AGE_DAYS: tf.TensorSpec([None, length], tf.int64,
                                                                     f.HISTORY_AGE_DAYS)}])
    def encode_history(inputs):
      return {f.HISTORY_STATE: tf.zeros([tf.shape(inputs[f.HISTORY_ITEM_IDS])[0], dimension])}

    @tf.function(input_signature=[{
        f.HISTORY_STATE: tf.TensorSpec([None, dimension], tf.float32, f.HISTORY_STATE),
        f.CONTEXT_CATEGORIES: tf.TensorSpec([None, views, categories], tf.string,
                                            f.CONTEXT_CATEGORIES)}])
    def context_head(inputs):
      return {f.USER_EMBEDDING: tf.math.l2_normalize(inputs[f.HISTORY_STATE] + 1.0, axis=1)}

    @tf.function(input_signature=[{
        f.ITEM_ID: tf.TensorSpec([None], tf.string, f.ITEM_ID),
        f.ITEM_CATEGORIES: strings(f.ITEM_CATEGORIES, categories),
        f.ITEM_CONFIDENCES: tf.TensorSpec([None, categories], tf.float32, f.ITEM_CONFIDENCES)}])
    def embed_items(inputs):
      bucket = tf.strings.to_hash_bucket_fast(inputs[f.ITEM_ID], dimension)
      return {f.ITEM_EMBEDDING: tf.one_hot(bucket, dimension)}

    functions = {f.SIGNATURE_ENCODE_HISTORY: encode_history,
                 f.SIGNATURE_CONTEXT_HEAD: context_head, f.SIGNATURE_EMBED_ITEMS: embed_items}
    path = os.path.join(tmp_path, "models", str(version))
    tf.saved_model.save(tf.Module(), path, signatures={
        name: function.get_concrete_function() for name, function in functions.items()
        if name not in without})
    return path

  return save
