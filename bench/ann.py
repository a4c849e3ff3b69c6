"""ANN over a 1M-item catalog embedded by a pipeline-trained model: ScaNN vs exact vs HNSW.

Trains with the pipeline (`ctxrec run`'s create_pipeline) on the first --users users of the
`large` profile with its full items table, so the trained model embeds all 1M items (items it
never saw in training through their categories); then, in one run and one thread each:
  exact   numpy brute force (float32 dot products over every item)
  scann   ctxrec's IndexBuilder searcher (tree ~sqrt(n) leaves, AH 2 dims/block, reorder),
          search settings tuned to recall@100 >= --recall on real queries
  hnsw    FAISS IndexHNSWFlat(M=32, inner product), efSearch raised until recall@100 >= --recall
reporting queries/s (one query at a time, one thread), recall@100, build time and memory.
Queries are real user embeddings: `serving_default` on the subset run's eval requests.

Usage: .venv/bin/pip install -e '.[bench]'   (faiss-cpu: a bench-only extra)
       .venv/bin/python bench/generate_large.py --out data/large
       .venv/bin/python bench/ann.py [--data data/large] [--users 20000] [--out out/ann]
"""
import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
  os.environ[_variable] = "1"  # one thread for numpy's exact search, before numpy loads

import argparse  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, List, Optional, Tuple  # noqa: E402

import ctxrec  # noqa: E402,F401  (selects tf-keras before TensorFlow loads)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import tensorflow as tf  # noqa: E402

from ctxrec.pipeline import local_runner  # noqa: E402
from ctxrec.pipeline.config import PipelineConfig  # noqa: E402
from ctxrec.serving.index import searcher_config as sc  # noqa: E402
from ctxrec.serving.index import tuning  # noqa: E402
from ctxrec.serving.index.exact import ExactTruth, exact_truth, recall_at_k  # noqa: E402
from ctxrec.trainer import exported_model  # noqa: E402
from ctxrec.transform import features as f  # noqa: E402

K = 100
MIB = 1024 ** 2


def _rss() -> float:
  return psutil.Process().memory_info().rss / MIB


def subset(data: str, users: int, out: str) -> str:
  """The first `users` users' events of `data`, with the full items table."""
  if os.path.exists(os.path.join(out, "events.parquet")):
    return out
  os.makedirs(out, exist_ok=True)
  events = pq.read_table(os.path.join(data, "events.parquet"))
  wanted = pc.unique(events.column(f.USER_ID)).slice(0, users)
  pq.write_table(events.filter(pc.is_in(events.column(f.USER_ID), value_set=wanted)),
                 os.path.join(out, "events.parquet"))
  for table in ("items", "users"):
    shutil.copy(os.path.join(data, f"{table}.parquet"), os.path.join(out, f"{table}.parquet"))
  return out


def trained_model(data: str, out: str) -> Tuple[str, str]:
  """(the Trainer's SavedModel, the eval examples) of a pipeline run on `data`."""
  config = PipelineConfig(data_dir=os.path.abspath(data), output_dir=os.path.abspath(out))
  started = time.perf_counter()
  summary = local_runner.run_local(config)
  print(f"pipeline on {data}: {time.perf_counter() - started:.0f}s "
        f"({', '.join(f'{r.component} {r.state} {r.seconds:.0f}s' for r in summary.components)})",
        flush=True)
  root = config.pipeline_root

  def latest(component: str, output: str) -> str:
    folder = os.path.join(root, component, output)
    return os.path.join(folder, max(os.listdir(folder), key=int))
  return (os.path.join(latest("Trainer", "model"), "Format-Serving"),
          os.path.join(latest("SequenceExampleGen", "examples"), "Split-eval"))


def embeddings(model_dir: str, data: str, eval_dir: str,
               queries: int) -> Tuple[np.ndarray, np.ndarray]:
  """(item embeddings of the whole catalog, user embeddings of `queries` eval requests)."""
  model = tf.saved_model.load(model_dir)
  items = pd.read_parquet(os.path.join(data, "items.parquet"))
  started = time.perf_counter()
  catalog = exported_model.embed_catalog(model.signatures, items)
  print(f"embedded {len(catalog):,} items in {time.perf_counter() - started:.0f}s", flush=True)
  serving = model.signatures[f.SIGNATURE_SERVING_DEFAULT]
  requests = exported_model.example_requests(sorted(tf.io.gfile.glob(f"{eval_dir}/*.gz")),
                                             serving)
  pick = np.random.default_rng(0).permutation(len(requests.labels))[:queries]
  users = exported_model.embed(serving, {n: v[pick] for n, v in requests.inputs.items()},
                               f.USER_EMBEDDING)
  return catalog, users


def qps(search_one: Callable[[np.ndarray], np.ndarray],
        queries: np.ndarray) -> Tuple[float, np.ndarray]:
  """Queries/s one at a time, and the rows each returned."""
  search_one(queries[0])
  started = time.perf_counter()
  rows = [np.asarray(search_one(query))[:K] for query in queries]
  return len(queries) / (time.perf_counter() - started), np.array(rows)


def report(name: str, per_second: float, rows: np.ndarray, truth: ExactTruth, build_s: float,
           memory_mib: float, extra: str) -> Dict[str, float]:
  recall = recall_at_k(rows, truth, K)
  print(f"{name:<6} {per_second:>9,.1f} q/s  recall@100 {recall:.4f}  build {build_s:>6.1f}s  "
        f"memory +{memory_mib:,.0f} MiB  {extra}", flush=True)
  return {"qps": per_second, "recall": recall}


def bench_exact(items: np.ndarray, queries: np.ndarray, truth: ExactTruth) -> Dict[str, float]:
  def search_one(query):
    scores = items @ query
    top = np.argpartition(-scores, K)[:K]
    return top[np.argsort(-scores[top])]
  per_second, rows = qps(search_one, queries)
  return report("exact", per_second, rows, truth, 0.0, items.nbytes / MIB, "numpy, float32")


def bench_scann(items: np.ndarray, queries: np.ndarray, truth: ExactTruth,
                threshold: float) -> Dict[str, float]:
  before, started = _rss(), time.perf_counter()
  config = sc.config_for_catalog(len(items))
  searcher = sc.build(items, config, training_threads=1)
  build_s, memory = time.perf_counter() - started, _rss() - before
  searcher.set_num_threads(1)
  measured = tuning.tune(searcher, config, truth, threshold)
  chosen = tuning.best(measured, threshold)
  per_second, rows = qps(lambda q: sc.search_one(searcher, q, K, chosen.settings)[0], queries)
  return report("scann", per_second, rows, truth, build_s, memory,
                f"{config.kind}, {config.num_leaves} leaves, {chosen.settings}")


def bench_hnsw(items: np.ndarray, queries: np.ndarray, truth: ExactTruth,
               threshold: float) -> Optional[Dict[str, float]]:
  try:
    import faiss  # pylint: disable=g-import-not-at-top
  except ImportError:
    print("hnsw   skipped: faiss-cpu is not installed (.venv/bin/pip install -e '.[bench]')")
    return None
  faiss.omp_set_num_threads(1)
  before, started = _rss(), time.perf_counter()
  index = faiss.IndexHNSWFlat(items.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
  index.add(items)
  build_s, memory = time.perf_counter() - started, _rss() - before
  for ef in (100, 128, 160, 200, 256, 320, 400, 512, 640, 800, 1024):
    index.hnsw.efSearch = ef
    per_second, rows = qps(lambda q: index.search(q[np.newaxis], K)[1][0], queries)
    if recall_at_k(rows, truth, K) >= threshold:
      break
  return report("hnsw", per_second, rows, truth, build_s, memory,
                f"M=32, efConstruction {index.hnsw.efConstruction}, efSearch "
                f"{index.hnsw.efSearch}")


def main(argv: Optional[List[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default="data/large")
  parser.add_argument("--users", type=int, default=20_000)
  parser.add_argument("--out", default="out/ann")
  parser.add_argument("--queries", type=int, default=1000)
  parser.add_argument("--recall", type=float, default=0.95)
  args = parser.parse_args(argv)
  data = subset(args.data, args.users, os.path.join(args.out, "data"))
  model_dir, eval_dir = trained_model(data, os.path.join(args.out, "run"))
  items, queries = embeddings(model_dir, data, eval_dir, args.queries)
  truth = exact_truth(queries, items, K)
  print(f"{len(items):,} items x {items.shape[1]} dims, {len(queries)} real queries; "
        f"one query at a time, one thread", flush=True)
  exact = bench_exact(items, queries, truth)
  scann = bench_scann(items, queries, truth, args.recall)
  hnsw = bench_hnsw(items, queries, truth, args.recall)
  print(f"scann / exact: {scann['qps'] / exact['qps']:.0f}x"
        + (f"; scann / hnsw: {scann['qps'] / hnsw['qps']:.1f}x" if hnsw else ""))


if __name__ == "__main__":
  main()
