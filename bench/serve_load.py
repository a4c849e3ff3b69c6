"""Open-loop load on the retrieval service: latency percentiles, errors and per-stage shares.

Builds (once) a release over the `large` profile: the given model copied to
OUT/serving/ctxrec/<version>, then `ctxrec daily` on --data, which publishes every user's
state (~1M) into OUT/states.sqlite and the recall-gated ScaNN index of the 1M-item catalog.
Then, for each head (in-process; through the TF Serving gRPC test double, since the real
tensorflow_model_server is not installable here), starts `ctxrec serve` in a child process and
sends requests on a fixed schedule (open loop: a slow answer does not delay the next request;
latency counts from the scheduled send, so queueing is included) for --seconds at --qps.

Requests: users with a state, each with their session at their last view of a catalog item
(`context.views`: up to --views catalogued views within the session window, most recent first),
k=--k.
Reports client latency p50/p99/p99.9, errors (non-200 or timeouts), fallbacks, the server's
per-stage time shares (state, head, ann, other) and the server process's CPU use.

Usage: .venv/bin/python bench/serve_load.py --model out/ann/run/serving/ctxrec  (or a Trainer's
         Format-Serving folder with --version N)
         [--data data/large] [--out out/serve_load] [--qps 200] [--seconds 600] [--k 100]
         [--heads in_process,grpc_double] [--views 8]
"""
import argparse
import http.client
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

import ctxrec  # noqa: F401  (selects tf-keras before TensorFlow loads)
import httpx
import numpy as np
import psutil

from ctxrec.pipeline import config as pipeline_config
from ctxrec.pipeline import local_runner
from ctxrec.serving import feature_store
from ctxrec.serving import loopback
from ctxrec.serving import model_versions
from ctxrec.serving.index import index_dir
from ctxrec.serving.service import showcase
from ctxrec.serving.service.serving_paths import index_path
from ctxrec.serving.tf_serving.model_config import MODEL_NAME
from ctxrec.transform.features import DEFAULT_SESSION_VIEWS

DOUBLE = os.path.join(os.path.dirname(__file__), "..", "tests", "serving", "tf_serving_double.py")


def _model(model: str, version: Optional[str]) -> Tuple[str, str]:
  """(SavedModel dir, version): a pushed version or model folder, or any SavedModel (e.g. a
  Trainer's Format-Serving of a run that was not blessed) with --version."""
  if version:
    return model, version
  version_dir = model_versions.resolve_version_dir(model)
  return version_dir, model_versions.version_of(version_dir)


def release(model: str, version: Optional[str], data: str, out: str) -> str:
  """OUT/serving with the model, its index and its states (built by `ctxrec daily` once)."""
  version_dir, version = _model(model, version)
  target = os.path.join(out, "serving", MODEL_NAME, version)
  if not os.path.exists(target):
    shutil.copytree(version_dir, target)
  store_uri = pipeline_config.default_store_uri(out)
  with feature_store.open_store(store_uri) as store:
    current = store.current()
  index = os.path.join(out, "serving", "index", version)
  if current is None or current.model_version != version or not os.path.exists(index):
    started = time.perf_counter()
    summary = local_runner.run_daily_local(pipeline_config.DailyPipelineConfig(
        data_dir=os.path.abspath(data), output_dir=os.path.abspath(out), model_dir=target,
        store_uri=store_uri))
    print(f"release: ctxrec daily {time.perf_counter() - started:.0f}s, {summary.states} "
          f"states, index: {summary.index and summary.index['reason']}", flush=True)
  return os.path.join(out, "serving")


def workload(serving_dir: str, store_uri: str, data: str, count: int, k: int,
             views: int) -> List[dict]:
  """Requests of users with a state, each with their session at their last view: their last
  `views` catalogued views within the session window, most recent first (as `ctxrec ask`)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  with feature_store.open_store(store_uri) as store:
    version = store.current()
    catalog = index_dir.read_catalog(index_path(serving_dir, version.model_version))
    events = pd.read_parquet(os.path.join(data, "events.parquet"),
                             columns=["user_id", "item_id", "event_type", "timestamp"])
    seen = events[(events["event_type"] == "view") & events["item_id"].isin(catalog)]
    last = seen.sort_values("timestamp", kind="stable").drop_duplicates("user_id", keep="last")
    last = last.sample(n=min(len(last), count * 2), random_state=0)
    states = store.get_many(list(last["user_id"]), version)
  users = [u for u, s in zip(last["user_id"], states) if s is not None][:count]
  mine = seen[seen["user_id"].isin(users)].sort_values("timestamp", kind="stable")
  sessions = {u: showcase.session_of(frame, views, showcase.SESSION_WINDOW_SECONDS)
              for u, frame in mine.groupby("user_id", sort=False)}
  sizes = [len(sessions[u]) for u in users]
  print(f"workload: {len(users)} requests of users with a state viewing catalog items, "
        f"sessions of {np.mean(sizes):.1f} views on average (at most {views}); "
        f"{len(catalog):,} items, states {version}", flush=True)
  return [{"user_id": u, "context": showcase.Viewer(u, sessions[u]).context(), "k": k}
          for u in users]


def start_double(serving_dir: str):
  process = subprocess.Popen([sys.executable, DOUBLE, "--model-base-path",
                              os.path.join(serving_dir, MODEL_NAME)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
  ports = dict(part.split("=") for part in process.stdout.readline().split())
  return process, f"grpc://127.0.0.1:{ports['grpc']}"


def start_service(serving_dir: str, store_uri: str, port: int, tf_serving: Optional[str],
                  workers: int):
  command = [sys.executable, "-m", "ctxrec.pipeline.cli", "serve", "--serving-dir", serving_dir,
             "--store", store_uri, "--port", str(port), "--workers", str(workers)]
  if tf_serving:
    command += ["--tf-serving", tf_serving]
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 600
  while time.monotonic() < deadline:
    try:
      if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
        return process
    except httpx.HTTPError:
      pass
    time.sleep(0.5)
  process.kill()
  raise RuntimeError("the service did not become ready in 10 minutes")


def open_loop(port: int, requests: List[dict], qps: float, seconds: float,
              connections: int = 64) -> Dict:
  """Sends request i at t0 + i/qps whatever the earlier ones do (workers on keep-alive
  connections take them from a queue); latency counts from the scheduled moment."""
  total = int(qps * seconds)
  jobs: "queue.Queue[Optional[Tuple[int, float]]]" = queue.Queue()
  latencies, failures, fallbacks = [], [0], {}
  stages = {"state": 0.0, "head": 0.0, "ann": 0.0, "total": 0.0}
  lock = threading.Lock()

  def worker():
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while (job := jobs.get()) is not None:
      index, scheduled = job
      try:
        connection.request("POST", "/v1/retrieve", json.dumps(requests[index % len(requests)]),
                           {"content-type": "application/json"})
        response = connection.getresponse()
        data = response.read()
      except (OSError, http.client.HTTPException):
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with lock:
          failures[0] += 1
        continue
      elapsed = time.perf_counter() - scheduled
      body = json.loads(data) if response.status == 200 else None
      with lock:
        latencies.append(elapsed)
        if body is None:
          failures[0] += 1
          continue
        for name in body["fallbacks"]:
          fallbacks[name] = fallbacks.get(name, 0) + 1
        for stage in stages:
          stages[stage] += body["timings_ms"][stage]
    connection.close()

  workers = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
  for thread in workers:
    thread.start()
  start = time.perf_counter() + 0.2
  for index in range(total):
    scheduled = start + index / qps
    delay = scheduled - time.perf_counter()
    if delay > 0:
      time.sleep(delay)
    jobs.put((index, scheduled))
  for _ in workers:
    jobs.put(None)
  for thread in workers:
    thread.join()
  ms = np.array(latencies) * 1000
  return {"sent": total, "answered": len(latencies) - failures[0], "errors": failures[0],
          "fallbacks": fallbacks, "p50": np.percentile(ms, 50), "p99": np.percentile(ms, 99),
          "p999": np.percentile(ms, 99.9), "stages": stages}


def _cpu_seconds(pid: int) -> float:
  """CPU seconds of a process and its children (uvicorn's workers)."""
  process = psutil.Process(pid)
  total = 0.0
  for each in [process] + process.children(recursive=True):
    times = each.cpu_times()
    total += times.user + times.system
  return total


def run(head: str, serving_dir: str, store_uri: str, requests: List[dict], args) -> None:
  double, tf_serving = (start_double(serving_dir) if head == "grpc_double" else (None, None))
  port = loopback.free_port()
  service = start_service(serving_dir, store_uri, port, tf_serving, args.workers)
  try:
    open_loop(port, requests, args.qps, min(5.0, args.seconds))  # warm up
    cpu = _cpu_seconds(service.pid)
    started = time.perf_counter()
    result = open_loop(port, requests, args.qps, args.seconds)
    wall = time.perf_counter() - started
    used = _cpu_seconds(service.pid) - cpu
  finally:
    for child in psutil.Process(service.pid).children(recursive=True):
      child.kill()
    service.kill()
    if double:
      double.kill()
  stages = result["stages"]
  share = {s: stages[s] / stages["total"] for s in ("state", "head", "ann")}
  share["other"] = 1 - sum(share.values())
  print(f"{head:<12} {args.workers} worker(s), {args.qps:.0f} qps x {args.seconds:.0f}s: p50 {result['p50']:.2f} ms, "
        f"p99 {result['p99']:.2f} ms, p99.9 {result['p999']:.2f} ms, errors {result['errors']} "
        f"of {result['sent']}, fallbacks {result['fallbacks'] or 'none'}", flush=True)
  print(f"{'':<12} server time by stage: " + ", ".join(f"{s} {v:.0%}" for s, v in share.items())
        + f" (mean total {stages['total'] / max(1, result['answered']):.2f} ms); service CPU "
        f"{used / wall:.0%} of one core ({used / max(1, result['answered']) * 1000:.2f} ms "
        f"per request)", flush=True)


def main(argv: Optional[List[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True, help="a pushed version or model folder, or a "
                      "SavedModel with --version")
  parser.add_argument("--version", default=None, help="the model version of a --model that is "
                      "not in TF Serving layout (an integer)")
  parser.add_argument("--data", default="data/large")
  parser.add_argument("--out", default="out/serve_load")
  parser.add_argument("--qps", type=float, default=200)
  parser.add_argument("--seconds", type=float, default=600)
  parser.add_argument("--k", type=int, default=100)
  parser.add_argument("--heads", default="in_process,grpc_double")
  parser.add_argument("--workers", type=int, default=1, help="`ctxrec serve --workers`")
  parser.add_argument("--views", type=int, default=DEFAULT_SESSION_VIEWS,
                      help="views per request's session at most (1: one viewed item)")
  args = parser.parse_args(argv)
  serving_dir = release(args.model, args.version, args.data, args.out)
  store_uri = pipeline_config.default_store_uri(args.out)
  requests = workload(serving_dir, store_uri, args.data, 20_000, args.k, args.views)
  for head in args.heads.split(","):
    run(head, os.path.abspath(serving_dir), store_uri, requests, args)


if __name__ == "__main__":
  main()
