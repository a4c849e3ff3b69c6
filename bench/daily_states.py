"""Daily history states: Beam job vs a raw loop, the whole daily run, and the state stores.

1. beam:   users/s of the HistoryStateInferrer Beam job (read, last conversions, RunInference,
           Parquet) against a raw batched `encode_history` loop over the same users' histories
           in this process (histories built beforehand, not timed); ratio >= 0.8 is the goal.
2. daily:  `ctxrec daily` end to end on --data (validation, Beam job, publish to SQLite) in a
           child process: wall time and peak RSS.
3. stores: --states random float32 states into SQLite and a local redis-server: write
           throughput, point-read p50/p99 and a 100-user batch read's p50.

Usage: .venv/bin/python bench/daily_states.py --model out/demo/serving/ctxrec
         [--data data/demo] [--parts beam,daily,stores] [--states 1000000]
The large profile (1M users): .venv/bin/python bench/generate_large.py --out data/large, then
--data data/large.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

import ctxrec  # noqa: F401  (selects tf-keras before TensorFlow loads)
import apache_beam as beam
import numpy as np
import pandas as pd
from apache_beam.options.pipeline_options import PipelineOptions

from ctxrec.components import history_states, user_history
from ctxrec.components.history_state_inferrer.config import HistoryStateInferrerConfig
from ctxrec.components.history_state_inferrer.executor import StatesJob
from ctxrec.components.history_state_inferrer.model_handler import EncodeHistory
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen.config import SECONDS_PER_DAY, day_to_date, epoch_day
from ctxrec.pipeline.config import DEFAULT_BEAM_ARGS
from ctxrec.serving import feature_store, model_versions
from ctxrec.serving.feature_store import StatesVersion
from ctxrec.serving.feature_store.local_redis import LocalRedis
from ctxrec.transform import features as f

GIB = 1024 ** 3


def _histories(tables: input_tables.TableFiles, day: int,
               length: int) -> List[user_history.History]:
  """Every user's history on `day`, by pandas and the shared history function (not timed)."""
  catalog = input_tables.load_items(tables.items)
  events = pd.read_parquet(tables.events, columns=list(f.EVENTS_COLUMNS))
  events = events[(events[f.EVENT_TYPE] == f.EVENT_CONVERSION) &
                  (events[f.TIMESTAMP] < day * SECONDS_PER_DAY) &
                  events[f.ITEM_ID].isin(catalog.keys())]
  events = events.sort_values([f.USER_ID, f.TIMESTAMP, f.ITEM_ID])  # sorted as the contract says
  users = events[f.USER_ID].to_numpy()
  timestamps, items = events[f.TIMESTAMP].tolist(), events[f.ITEM_ID].tolist()
  bounds = [0, *(np.flatnonzero(users[1:] != users[:-1]) + 1).tolist(), len(users)]
  return [user_history.history_at_day(list(zip(timestamps[start:end], items[start:end])), day,
                                      length, catalog)
          for start, end in zip(bounds[:-1], bounds[1:])]


def bench_beam(tables, model_dir: str, day: int) -> None:
  encoder = EncodeHistory(model_dir)
  config = HistoryStateInferrerConfig()
  started = time.perf_counter()
  histories = _histories(tables, day, encoder.history_length)
  print(f"beam: {len(histories)} users with a history on {day_to_date(day)} "
        f"(built in {time.perf_counter() - started:.1f}s, not timed)", flush=True)
  encoder(histories[:config.max_batch_size])  # warm-up: tracing and thread pools
  raw = {}
  for batch in (config.min_batch_size, config.max_batch_size):
    started = time.perf_counter()
    for start in range(0, len(histories), batch):
      encoder(histories[start:start + batch])
    raw[batch] = len(histories) / (time.perf_counter() - started)
    print(f"beam: raw encode_history loop, batch {batch}: {raw[batch]:,.0f} users/s", flush=True)
  with tempfile.TemporaryDirectory(prefix="ctxrec-bench-") as scratch:
    artifact = history_states.HistoryStates()
    artifact.uri = scratch
    job = StatesJob(tables, model_dir, encoder.history_length, encoder.dimension, config, day,
                    StatesVersion(model_versions.version_of(model_dir), day_to_date(day)))
    started = time.perf_counter()
    users = job.run(beam.Pipeline(options=PipelineOptions(list(DEFAULT_BEAM_ARGS))), artifact)
    seconds = time.perf_counter() - started
  best = max(raw.values())
  print(f"beam: Beam job ({' '.join(DEFAULT_BEAM_ARGS)}): {users} users in {seconds:.1f}s = "
        f"{users / seconds:,.0f} users/s; ratio to the best raw loop {users / seconds / best:.2f}",
        flush=True)


def bench_daily(data: str, model_dir: str, serving_date: str) -> None:
  with tempfile.TemporaryDirectory(prefix="ctxrec-bench-") as out:
    command = [os.path.join(os.path.dirname(sys.executable), "ctxrec"), "daily", "--data", data,
               "--out", out, "--model", model_dir, "--serving-date", serving_date]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GIB
    with feature_store.open_store(f"sqlite:///{out.lstrip('/')}/states.sqlite") as store:
      rows = store.info(store.current()).rows
  print(f"daily: `ctxrec daily` on {data}: {rows} states published in {seconds:.1f}s "
        f"({rows / seconds:,.0f} users/s end to end), peak RSS {peak:.2f} GiB", flush=True)


def _percentiles(samples: List[float]) -> str:
  p50, p99 = np.percentile(np.array(samples) * 1e6, [50, 99])
  return f"p50 {p50:.0f} us, p99 {p99:.0f} us"


def bench_store(name: str, uri: str, count: int, dimension: int = 64, batch: int = 2000) -> None:
  rng = np.random.default_rng(0)
  version = StatesVersion("1", "2026-01-01")
  users = [f"user{i}" for i in range(count)]

  def batches():
    for start in range(0, count, batch):
      yield users[start:start + batch], rng.normal(size=(min(batch, count - start), dimension))

  with feature_store.open_store(uri) as store:
    started = time.perf_counter()
    store.publish(version, dimension, np.zeros(dimension), batches())
    seconds = time.perf_counter() - started
    probes = rng.choice(count, size=20000)
    point = []
    for i in probes:
      started = time.perf_counter()
      store.get(users[i], version)
      point.append(time.perf_counter() - started)
    many = []
    for start in range(0, 20000, 100):
      chosen = [users[i] for i in probes[start:start + 100]]
      started = time.perf_counter()
      store.get_many(chosen, version)
      many.append(time.perf_counter() - started)
  print(f"stores: {name}: wrote {count:,} states in {seconds:.1f}s ({count / seconds:,.0f}/s); "
        f"point read {_percentiles(point)}; 100-user batch read p50 "
        f"{np.percentile(many, 50) * 1e3:.2f} ms", flush=True)


def main(argv: Optional[List[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default="data/demo")
  parser.add_argument("--model", default="out/demo/serving/ctxrec",
                      help="a pushed version or a model folder (its newest version)")
  parser.add_argument("--serving-date", default="",
                      help="YYYY-MM-DD; default: the day after the last event")
  parser.add_argument("--parts", default="beam,daily,stores")
  parser.add_argument("--states", type=int, default=1_000_000)
  args = parser.parse_args(argv)
  parts = set(args.parts.split(","))
  if parts & {"beam", "daily"}:
    model_dir = model_versions.resolve_version_dir(args.model)
    tables = input_tables.locate_tables(args.data)
    scan = input_tables.scan_events(tables.events, input_tables.load_items(tables.items))
    day = (epoch_day(args.serving_date) if args.serving_date
           else scan.max_timestamp // SECONDS_PER_DAY + 1)
    if "beam" in parts:
      bench_beam(tables, model_dir, day)
    if "daily" in parts:
      bench_daily(os.path.abspath(args.data), model_dir, day_to_date(day))
  if "stores" in parts:
    with tempfile.TemporaryDirectory(prefix="ctxrec-bench-") as scratch:
      bench_store("sqlite", f"sqlite:///{scratch.lstrip('/')}/states.sqlite", args.states)
    with LocalRedis() as server:
      bench_store("redis", server.uri, args.states)


if __name__ == "__main__":
  main()
