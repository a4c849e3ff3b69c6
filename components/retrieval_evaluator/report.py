"""The evaluation report: summary.json for tools, report.md and recall_at_k.png for people.

summary.json has the shape tools read:
{"model_version": int | None, "blessed": bool, "eval_examples": int,
 "metrics": {method: {mode: {metric: float, ..., "n": int}}},
 "intervals": {method: {mode: {metric: [lo, hi]}}},
 "blessing": {"reasons": [str, ...], ...}}
Methods and modes that were not evaluated (e.g. oracles without ground truth) are absent.
"""
import json
import os
import shutil
import tempfile
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ctxrec.components.retrieval_evaluator import metrics as m

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
PLOT_FILE = "recall_at_k.png"
TABLE_METRICS = tuple(f"recall@{k}" for k in m.RECALL_KS) + ("ndcg@10", m.MRR, m.COUNT)
_NOTES = (
    "- Each eval example has one relevant item, its label, ranked exactly among the whole "
    "catalog (ties go to the earlier catalog item); an item outside the catalog is a miss.",
    "- recall@K: share of labels ranked within the top K. ndcg@K: mean of 1 / log2(rank + 1) "
    "within the top K (one relevant item, so the ideal DCG is 1).",
    f"- mrr is MRR@{m.MAX_K}: mean of 1 / rank within the top {m.MAX_K}, so full-catalog methods "
    f"and oracles that return a top-{m.MAX_K} list compare alike.",
    "- Intervals are 95% percentile bootstrap intervals over eval examples.",
    "- Oracles rank by the true conversion probability of the synthetic world (defined in "
    "synthetic/oracle.py): the ceiling a learned retriever can reach; absent on real data.",
)


def _jsonable(value: Any) -> Any:
  """Plain JSON types, so numpy scalars and tuples from the caller serialise."""
  if isinstance(value, Mapping):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple, np.ndarray)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  return value


def _pairs(table: Mapping[str, Mapping[str, Any]]) -> List[tuple]:
  """(method, mode) pairs present in `table`, in METHODS x MODES order; unknown names fail."""
  for method, modes in table.items():
    unknown = [method] if method not in m.METHODS else [x for x in modes if x not in m.MODES]
    if unknown:
      raise ValueError(f"unknown method or mode {unknown[0]!r}: use metrics.METHODS, MODES")
  return [(method, mode) for method in m.METHODS for mode in m.MODES
          if mode in table.get(method, {})]


def build_summary(metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
                  intervals: Mapping[str, Mapping[str, Mapping[str, Any]]], eval_examples: int,
                  blessed: bool, blessing: Mapping[str, Any],
                  model_version: Optional[int] = None) -> Dict[str, Any]:
  """The summary in the one shape tools read, with plain types and a fixed method order."""
  table: Dict[str, Dict[str, Any]] = {}
  bounds: Dict[str, Dict[str, Any]] = {}
  for method, mode in _pairs(metrics):
    values = metrics[method][mode]
    missing = [name for name in m.METRIC_NAMES + (m.COUNT,) if name not in values]
    if missing:
      raise ValueError(f"metrics[{method!r}][{mode!r}] lacks {', '.join(missing)}")
    row = {name: float(values[name]) for name in m.METRIC_NAMES}
    table.setdefault(method, {})[mode] = {**row, m.COUNT: int(values[m.COUNT])}
    given = intervals.get(method, {}).get(mode, {})
    bounds.setdefault(method, {})[mode] = {
        name: [float(given[name][0]), float(given[name][1])]
        for name in m.METRIC_NAMES if name in given}
  blessing = _jsonable(blessing)
  blessing["reasons"] = [str(reason) for reason in blessing.get("reasons", [])]
  return {
      "model_version": None if model_version is None else int(model_version),
      "blessed": bool(blessed),
      "eval_examples": int(eval_examples),
      "metrics": table,
      "intervals": bounds,
      "blessing": blessing,
  }


def _cell(summary: Mapping[str, Any], method: str, mode: str, name: str) -> str:
  """One markdown cell: the value with its interval when there is one."""
  value = summary["metrics"][method][mode][name]
  if name == m.COUNT:
    return str(value)
  bounds = summary.get("intervals", {}).get(method, {}).get(mode, {}).get(name)
  return f"{value:.3f}" + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds else "")


def _mode_table(summary: Mapping[str, Any], mode: str) -> List[str]:
  """A markdown table for one mode: methods as rows, metrics as columns."""
  names = m.METRIC_NAMES + (m.COUNT,)
  lines = [f"## Mode `{mode}`", "", "| method | " + " | ".join(names) + " |",
           "| --- |" + " ---: |" * len(names)]
  for method in m.METHODS:
    if mode in summary["metrics"].get(method, {}):
      cells = [_cell(summary, method, mode, name) for name in names]
      lines.append(f"| {method} | " + " | ".join(cells) + " |")
  return lines + [""]


def render_markdown(summary: Mapping[str, Any]) -> str:
  """report.md: verdict and reasons first, then one table per mode, then the definitions."""
  version = summary.get("model_version")
  lines = ["# Retrieval evaluation", "",
           f"Model version: {'unknown' if version is None else version}; "
           f"eval examples: {summary['eval_examples']}.", "",
           f"**Blessed: {'yes' if summary['blessed'] else 'no'}**", ""]
  reasons = summary.get("blessing", {}).get("reasons", [])
  lines += [f"- {reason}" for reason in reasons] + ([""] if reasons else [])
  modes = [mode for mode in m.MODES
           if any(mode in by_mode for by_mode in summary["metrics"].values())]
  for mode in modes:
    lines += _mode_table(summary, mode)
  if not modes:
    lines += ["No method was evaluated.", ""]
  lines += _index_section(summary.get("index"))
  return "\n".join(lines + ["## How the metrics are defined", "", *_NOTES, ""])


def _index_section(index: Optional[Mapping[str, Any]]) -> List[str]:
  """The catalog index IndexBuilder built for the pushed model, when there is one."""
  if not index:
    return []
  lines = ["## Catalog index", "", f"{index['reason']}.", ""]
  if "recall" in index:
    searcher = index["searcher"]
    latency = index["latency_ms"]
    lines += [
        f"- {searcher['kind']} over {index['items']} items"
        + (f", {searcher['num_leaves']} leaves" if searcher.get("num_leaves") else "")
        + f"; search settings {index['settings']}",
        f"- recall@10 {index['recall']['recall@10']:.4f}, recall@100 "
        f"{index['recall']['recall@100']:.4f} against exact search on {index['queries']} "
        f"{index['query_source']} (gate: recall@100 >= {index['threshold']})",
        f"- one query, one thread: p50 {latency['p50']:.3f} ms, p99 {latency['p99']:.3f} ms",
        f"- published to: {index['published_dir'] or 'not published'}", ""]
  return lines


def _plot(summary: Mapping[str, Any], path: str) -> None:
  """Recall@K per method, one subplot per mode, with the bootstrap band when known."""
  modes = [mode for mode in m.MODES
           if any(mode in by_mode for by_mode in summary["metrics"].values())] or [m.MODES[0]]
  figure = Figure(figsize=(5.5 * len(modes), 4.5))
  FigureCanvasAgg(figure)
  axes = figure.subplots(1, len(modes), squeeze=False, sharey=True)[0]
  names = [f"recall@{k}" for k in m.RECALL_KS]
  for axis, mode in zip(axes, modes):
    for color, method in enumerate(m.METHODS):  # one colour per method in every subplot
      row = summary["metrics"].get(method, {}).get(mode)
      if row is None:
        continue
      axis.plot(m.RECALL_KS, [row[name] for name in names], marker="o", label=method,
                color=f"C{color}")
      bounds = summary.get("intervals", {}).get(method, {}).get(mode, {})
      if all(name in bounds for name in names):
        axis.fill_between(m.RECALL_KS, [bounds[name][0] for name in names],
                          [bounds[name][1] for name in names], color=f"C{color}", alpha=0.15)
    axis.set_xscale("log")
    axis.set_xticks(m.RECALL_KS, [str(k) for k in m.RECALL_KS])
    axis.minorticks_off()
    axis.set_xlabel("K")
    axis.set_ylabel("Recall@K")
    axis.set_title(f"mode: {mode}")
    axis.grid(True, alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
      axis.legend(fontsize="small")
  figure.suptitle("Recall@K by method (exact full-catalog ranking)")
  figure.tight_layout()
  figure.savefig(path, format="png", dpi=100)


def write_report(summary: Mapping[str, Any], directory: str) -> Dict[str, str]:
  """Writes the three report files (local or gs://); each lands whole or not at all.

  Files are built in a local temp dir, copied beside their target and renamed into place.
  """
  tf.io.gfile.makedirs(directory)
  staging = tempfile.mkdtemp(prefix="ctxrec-report-")
  try:
    with open(os.path.join(staging, SUMMARY_FILE), "w") as out:
      json.dump(_jsonable(summary), out, indent=2, sort_keys=True)
      out.write("\n")
    with open(os.path.join(staging, REPORT_FILE), "w") as out:
      out.write(render_markdown(summary))
    _plot(summary, os.path.join(staging, PLOT_FILE))
    paths = {}
    for name in (SUMMARY_FILE, REPORT_FILE, PLOT_FILE):
      paths[name] = os.path.join(directory, name)
      tf.io.gfile.copy(os.path.join(staging, name), paths[name] + ".tmp", overwrite=True)
      tf.io.gfile.rename(paths[name] + ".tmp", paths[name], overwrite=True)
    return paths
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def format_table(summary: Mapping[str, Any]) -> str:
  """A fixed-width console table, one row per evaluated (method, mode)."""
  method_width = max(len(name) for name in m.METHODS + ("method",))
  mode_width = max(len(name) for name in m.MODES + ("mode",))
  widths = [max(len(name), 7) for name in TABLE_METRICS]
  header = [f"{'method':<{method_width}}", f"{'mode':<{mode_width}}"]
  lines = ["  ".join(header + [f"{n:>{w}}" for n, w in zip(TABLE_METRICS, widths)])]
  for method in m.METHODS:
    for mode in m.MODES:
      row = summary.get("metrics", {}).get(method, {}).get(mode)
      if row is None:
        continue
      cells = [f"{row[n]:>{w}d}" if n == m.COUNT else f"{row[n]:>{w}.4f}"
               for n, w in zip(TABLE_METRICS, widths)]
      lines.append("  ".join([f"{method:<{method_width}}", f"{mode:<{mode_width}}"] + cells))
  return "\n".join(lines)
