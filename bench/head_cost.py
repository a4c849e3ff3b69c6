"""The online head's cost per request at batch 1: a session of one view against a session of 8,
on the same loaded model, in one process (issue 22: 8 views within 1.3x of one).

Times what the service's head stage does for one request (retrieval.RetrievalService._head
without TF Serving): HeadSignature.inputs from the resolved session, then the in-process
`context_head` call. The variants run in alternating blocks so that drift (other processes,
CPU frequency) falls on all alike; sessions are drawn from the release's catalog when the index
sits beside the model (OUT/serving/index/<version>), else from made-up ids and categories
(lookups cost the same for ids a vocabulary lacks).

With --baseline DIR, a model pushed before sessions (context inputs of one view: ids [B, 1],
categories [B, K]) is timed in the same run with its single view: today's head, which the issue
compares with. Prints one JSON line: ms per request (median and mean) of each variant and the
ratios.

Usage: .venv/bin/python bench/head_cost.py --model OUT/serving/ctxrec/<version>
         [--baseline OLD_OUT/serving/ctxrec/<version>] [--repetitions 3000] [--block 50]
         [--views 8]
"""
import argparse
import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import ctxrec  # noqa: F401  (selects tf-keras before TensorFlow loads)
import numpy as np
import tensorflow as tf

from ctxrec.components import request_context
from ctxrec.components.request_context import Context, View
from ctxrec.serving import model_versions
from ctxrec.serving.head import head as head_module
from ctxrec.serving.head.in_process import InProcessHead
from ctxrec.serving.index import index_dir
from ctxrec.trainer.exported_model import CONTEXT_FEATURES
from ctxrec.transform import features as f

SESSIONS = 64  # distinct sessions each variant cycles through


def _catalog_views(version_dir: str, count: int, rng: np.random.Generator) -> List[View]:
  """Views of catalog items when the release's index is beside the model, else made up."""
  version = model_versions.version_of(version_dir)
  index = os.path.join(os.path.dirname(os.path.dirname(version_dir)), "index", version)
  if os.path.exists(os.path.join(index, index_dir.ITEMS_FILE)):
    catalog = index_dir.read_catalog(index)
    rows = rng.choice(len(catalog), size=count)
    return [request_context.view_of_item(catalog.item_ids[r], catalog) for r in rows]
  return [View(f"bench_item_{n}", (f"bench_category_{n % 50}", f"bench_category_{n % 7}"),
               (0.75, 0.25)) for n in rng.integers(0, 100_000, size=count)]


def sessions(views: Sequence[View], width: int) -> List[Context]:
  """SESSIONS sessions of `width` views each, ages growing a minute per view."""
  out = []
  for start in range(0, SESSIONS * width, width):
    chosen = views[start:start + width]
    out.append(Context(tuple(View(v.item_id, v.categories, v.confidences, 60 * slot)
                             for slot, v in enumerate(chosen))))
  return out


def session_request(head: InProcessHead) -> Callable[[np.ndarray, Context], object]:
  """One request through the service's head stage: inputs of the session, then the call."""
  return lambda state, context: head.embed(head.signature.inputs(state, [context], [{}]))


def single_view_request(head: InProcessHead) -> Callable[[np.ndarray, Context], object]:
  """One request to a model of before sessions: the session's first view, at its widths."""
  specs = head.signature.specs
  categories = int(specs[f.CONTEXT_CATEGORIES].shape[-1])
  others = {n: s for n, s in specs.items() if n not in CONTEXT_FEATURES}

  def request(state: np.ndarray, context: Context):
    arrays = request_context.context_arrays([context], 1, categories)
    inputs = {n: arrays[n][:, 0] if specs[n].shape.rank < arrays[n].ndim else arrays[n]
              for n in CONTEXT_FEATURES if n in specs}
    inputs.update(head_module.context_inputs(others, [context], [{}]))
    return head.embed({f.HISTORY_STATE: state, **inputs})
  return request


def _time(request: Callable, state: np.ndarray, contexts: Sequence[Context],
          count: int, offset: int) -> List[float]:
  """Seconds of `count` requests, cycling through `contexts` from `offset`."""
  out = []
  for n in range(count):
    started = time.perf_counter()
    request(state, contexts[(offset + n) % len(contexts)])
    out.append(time.perf_counter() - started)
  return out


def measure(variants: Dict[str, tuple], repetitions: int, block: int) -> Dict[str, np.ndarray]:
  """Each variant's per-request seconds, in alternating blocks after a warm-up of each."""
  for request, state, contexts in variants.values():
    _time(request, state, contexts, 2 * block, 0)
  times: Dict[str, List[float]] = {name: [] for name in variants}
  for offset in range(0, repetitions, block):
    for name, (request, state, contexts) in variants.items():
      times[name] += _time(request, state, contexts, min(block, repetitions - offset), offset)
  return {name: np.array(values) for name, values in times.items()}


def _set_threads(threads: int) -> None:
  """TensorFlow's threads as the service sets them; kept when TensorFlow already runs (a test)."""
  try:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  except RuntimeError:
    pass


def _state(head: InProcessHead, rng: np.random.Generator) -> np.ndarray:
  return rng.normal(size=(1, head.signature.dimension)).astype(np.float32)


def main(argv: Optional[List[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True, help="a pushed SavedModel version folder "
                      "(OUT/serving/ctxrec/<version>) or a model folder holding versions")
  parser.add_argument("--baseline", default=None, help="a pushed model of before sessions, "
                      "timed with one view in the same run")
  parser.add_argument("--repetitions", type=int, default=3000, help="requests per variant")
  parser.add_argument("--block", type=int, default=50, help="requests per alternating block")
  parser.add_argument("--views", type=int, default=f.DEFAULT_SESSION_VIEWS)
  parser.add_argument("--tf-threads", type=int, default=1, help="TensorFlow's threads, as "
                      "`ctxrec serve` sets them (ServeConfig.tf_threads)")
  args = parser.parse_args(argv)
  _set_threads(args.tf_threads)
  rng = np.random.default_rng(0)
  version_dir = model_versions.resolve_version_dir(args.model)
  head = InProcessHead(version_dir)
  views = _catalog_views(version_dir, SESSIONS * args.views, rng)
  state = _state(head, rng)
  variants = {"one_view": (session_request(head), state, sessions(views, 1)),
              f"{args.views}_views": (session_request(head), state, sessions(views, args.views))}
  if args.baseline:
    old = InProcessHead(model_versions.resolve_version_dir(args.baseline))
    variants["baseline_one_view"] = (single_view_request(old), _state(old, rng),
                                     sessions(views, 1))
  times = measure(variants, args.repetitions, args.block)
  many = f"{args.views}_views"
  result = {"model": version_dir, "session_views": head.signature.session_views,
            "repetitions": args.repetitions,
            "tf_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            **{f"{name}_ms": {"median": round(float(np.median(t)) * 1000, 4),
                              "mean": round(float(np.mean(t)) * 1000, 4)}
               for name, t in times.items()},
            f"ratio_{many}_to_one_view": round(float(np.median(times[many])
                                                     / np.median(times["one_view"])), 3)}
  if args.baseline:
    result["baseline"] = args.baseline
    result[f"ratio_{many}_to_baseline"] = round(float(
        np.median(times[many]) / np.median(times["baseline_one_view"])), 3)
  print(json.dumps(result), flush=True)


if __name__ == "__main__":
  main()
