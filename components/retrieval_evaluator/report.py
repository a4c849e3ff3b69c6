"""The evaluation report: summary.json for tools, report.md and recall_at_k.png for people.

summary.json has the shape tools read:
{"model_version": int | None, "blessed": bool, "eval_examples": int,
 "context_mode": str | None,
 "metrics": {method: {mode: {metric: float, ..., "n": int}}},
 "intervals": {method: {mode: {metric: [lo, hi]}}},
 "lifts": {mode: {baseline: {"lift": float, "interval": [lo, hi], "n": int, "users": int}}},
 "slices": {slice: {"metrics": {method: {mode: {"recall@10": float, "recall@100": float,
                                                "n": int}}},
                    "intervals": {method: {mode: {"recall@10": [lo, hi],
                                                  "recall@100": [lo, hi]}}}}},
 "blessing": {"reasons": [str, ...], ...}}
Methods, modes and slices that were not evaluated (e.g. oracles without ground truth) are absent.
Intervals resample users (metrics.UserResample); a lift is contextual's relative recall@100 lift
over the baseline on the same examples, its interval paired (the same users for both). A lift or
bound that is unbounded (the baseline recalls nothing) is null, as JSON has no infinity.
"""
import json
import os
import shutil
import tempfile
import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ctxrec.components.retrieval_evaluator import blessing as blessing_rule
from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.transform import features as f

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
PLOT_FILE = "recall_at_k.png"


def _spans(buckets: Mapping[str, int]) -> str:
  """Bucket slices in words, "name (low-high)", from a slice -> lowest value mapping."""
  lows = list(buckets.values())
  highs = [low - 1 for low in lows[1:]] + [None]
  return ", ".join(
      f"{name} ({low}" + ("+" if high is None else "" if high == low else f"-{high}") + ")"
      for name, low, high in zip(buckets, lows, highs))


def _label_seen_note() -> str:
  """The label train-frequency buckets in words, from metrics.LABEL_SEEN_BUCKETS."""
  return ("the label train-frequency slices, by how often the label item was seen in the train "
          f"period (events of any type, as for {m.UNSEEN_LABEL}): "
          + _spans(m.LABEL_SEEN_BUCKETS))


def _session_length_note() -> str:
  """The session-length buckets in words, from metrics.SESSION_LENGTH_BUCKETS."""
  return ("the session-length slices, real-context examples by the views of their logged "
          f"session (an example keeps up to SequenceExampleGen's session_views, "
          f"{f.DEFAULT_SESSION_VIEWS} by default): "
          + _spans(m.SESSION_LENGTH_BUCKETS))


TABLE_METRICS = tuple(f"recall@{k}" for k in m.RECALL_KS) + ("ndcg@10", m.MRR, m.COUNT)
_NOTES = (
    "- Each eval example has one relevant item, its label, ranked exactly among the whole "
    "catalog (ties go to the earlier catalog item); an item outside the catalog is a miss.",
    "- recall@K: share of labels ranked within the top K. ndcg@K: mean of 1 / log2(rank + 1) "
    "within the top K (one relevant item, so the ideal DCG is 1).",
    f"- mrr is MRR@{m.MAX_K}: mean of 1 / rank within the top {m.MAX_K}, so full-catalog methods "
    f"and oracles that return a top-{m.MAX_K} list compare alike.",
    "- Intervals are 95% percentile intervals of a user-level (cluster) bootstrap: each replicate "
    "draws as many users as there are, with replacement, and takes all their eval examples, so "
    "a user with many conversions weighs as one draw; they are wider than intervals over "
    "examples when a user's conversions resemble each other.",
    f"- Lift over a baseline: (contextual - baseline) / baseline in {m.TARGET}, on the same "
    "examples. Its interval is a paired bootstrap: the same resampled users score both methods, "
    "so what they share does not count as noise.",
    f"- Baselines: {m.POPULARITY} ranks by train-period conversions; {m.CONTEXT_POPULARITY} puts "
    f"the most recent view's categories first, each by popularity; {m.LAST_VIEWED} puts the "
    f"most recently viewed item itself first, then as {m.CONTEXT_POPULARITY}; "
    f"{m.SESSION_VIEWS} puts the session's distinct viewed items first, most recent first, then "
    "their categories' items by popularity weighted by recency (view j, 0 the most recent, "
    "counts 2^-j of its category confidences). Without context the last three are "
    f"{m.POPULARITY}. {m.CONTEXTUAL} is measured as served: the distinct items of the session's "
    "views it reads go first, most recent first.",
    f"- Slices: {m.COLD_START}, examples with an empty history (first-ever conversions, scored "
    f"with the empty-history state); {m.CONTEXT_OFF_CATEGORY}, real-context examples whose "
    "most recent view's primary category is not the label's; "
    f"{m.UNSEEN_LABEL} and {m.UNSEEN_CONTEXT}, examples whose label or most recently viewed item "
    "has no event (view or conversion) before the eval start; "
    f"{_label_seen_note()}; {_session_length_note()}. In no_context mode a slice keeps the same "
    "examples, context removed.",
    "- Oracles rank by the true conversion probability of the synthetic world (defined in "
    "synthetic/oracle.py): the ceiling a learned retriever can reach; absent on real data. The "
    "context oracles see each example's whole logged session, every view, not only the last. "
    "The oracle that sees what the model's context carries (its context mode) is marked as its "
    "ceiling. Oracles never gate the blessing.",
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


def _table(metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
           intervals: Mapping[str, Mapping[str, Mapping[str, Any]]],
           names: Tuple[str, ...]) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, Dict[str, Any]]]:
  """(metrics, intervals) of `names` with plain types, in METHODS x MODES order."""
  table: Dict[str, Dict[str, Any]] = {}
  bounds: Dict[str, Dict[str, Any]] = {}
  for method, mode in _pairs(metrics):
    values = metrics[method][mode]
    missing = [name for name in names + (m.COUNT,) if name not in values]
    if missing:
      raise ValueError(f"metrics[{method!r}][{mode!r}] lacks {', '.join(missing)}")
    row = {name: float(values[name]) for name in names}
    table.setdefault(method, {})[mode] = {**row, m.COUNT: int(values[m.COUNT])}
    given = intervals.get(method, {}).get(mode, {})
    bounds.setdefault(method, {})[mode] = {
        name: [float(given[name][0]), float(given[name][1])] for name in names if name in given}
  return table, bounds


def _finite(value: Any) -> Optional[float]:
  """A float for JSON: None for an unbounded (infinite) lift or bound."""
  return None if value is None or math.isinf(float(value)) else float(value)


def _lift(entry: Mapping[str, Any]) -> Dict[str, Any]:
  """One lift with plain types ("users" when known)."""
  out = {"lift": _finite(entry["lift"]),
         "interval": [_finite(bound) for bound in entry["interval"]],
         m.COUNT: int(entry[m.COUNT])}
  return {**out, "users": int(entry["users"])} if "users" in entry else out


def _lifts(lifts: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Dict[str, Dict[str, Any]]:
  """The lifts by mode and baseline, in MODES x BASELINE_METHODS order; unknown names fail."""
  for mode, by_baseline in lifts.items():
    unknown = [mode] if mode not in m.MODES else [
        b for b in by_baseline if b not in m.BASELINE_METHODS]
    if unknown:
      raise ValueError(f"unknown mode or baseline {unknown[0]!r} in lifts: use metrics.MODES, "
                       f"BASELINE_METHODS")
  return {mode: {b: _lift(lifts[mode][b]) for b in m.BASELINE_METHODS if b in lifts[mode]}
          for mode in m.MODES if mode in lifts}


def _slices(slices: Mapping[str, Tuple[Mapping, Mapping]]) -> Dict[str, Dict[str, Any]]:
  """Each slice's recall@10, recall@100 and n by method and mode, with intervals."""
  unknown = [name for name in slices if name not in m.SLICES]
  if unknown:
    raise ValueError(f"unknown slice {unknown[0]!r}: use metrics.SLICES")
  out = {}
  for name in m.SLICES:
    if name in slices:
      table, bounds = _table(*slices[name], m.SLICE_METRICS)
      out[name] = {"metrics": table, "intervals": bounds}
  return out


def build_summary(metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
                  intervals: Mapping[str, Mapping[str, Mapping[str, Any]]], eval_examples: int,
                  blessed: bool, blessing: Mapping[str, Any],
                  model_version: Optional[int] = None,
                  lifts: Optional[Mapping[str, Mapping[str, Mapping[str, Any]]]] = None,
                  slices: Optional[Mapping[str, Tuple[Mapping, Mapping]]] = None,
                  context_mode: Optional[str] = None) -> Dict[str, Any]:
  """The summary in the one shape tools read, with plain types and a fixed method order.

  `slices` maps a slice name to its (metrics, intervals), shaped as the whole set's.
  """
  table, bounds = _table(metrics, intervals, m.METRIC_NAMES)
  blessing = _jsonable(blessing)
  blessing["reasons"] = [str(reason) for reason in blessing.get("reasons", [])]
  return {
      "model_version": None if model_version is None else int(model_version),
      "blessed": bool(blessed),
      "eval_examples": int(eval_examples),
      "context_mode": context_mode,
      "metrics": table,
      "intervals": bounds,
      "lifts": _lifts(lifts or {}),
      "slices": _slices(slices or {}),
      "blessing": blessing,
  }


def _cell(summary: Mapping[str, Any], method: str, mode: str, name: str) -> str:
  """One markdown cell: the value with its interval when there is one."""
  return _value_cell(summary["metrics"][method][mode], summary.get("intervals", {}), method,
                     mode, name)


def _value_cell(row: Mapping[str, Any], intervals: Mapping[str, Any], method: str, mode: str,
                name: str) -> str:
  """A metric value, with its interval from `intervals` (method -> mode -> metric) if any."""
  if name == m.COUNT:
    return str(row[name])
  bounds = intervals.get(method, {}).get(mode, {}).get(name)
  return f"{row[name]:.3f}" + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds else "")


def ceiling(summary: Mapping[str, Any]) -> Optional[str]:
  """The oracle that sees what the model's context carries: the model's ceiling, if known."""
  return m.CONTEXT_MODE_CEILINGS.get(summary.get("context_mode") or "")


def _label(summary: Mapping[str, Any], method: str) -> str:
  """A method's row label; the ceiling oracle says so."""
  if method == ceiling(summary):
    return f"{method} (ceiling for context mode {summary['context_mode']}, whole session)"
  return method


def _mode_table(summary: Mapping[str, Any], mode: str) -> List[str]:
  """A markdown table for one mode: methods as rows, metrics as columns."""
  names = m.METRIC_NAMES + (m.COUNT,)
  lines = [f"## Mode `{mode}`", "", "| method | " + " | ".join(names) + " |",
           "| --- |" + " ---: |" * len(names)]
  for method in m.METHODS:
    if mode in summary["metrics"].get(method, {}):
      cells = [_cell(summary, method, mode, name) for name in names]
      lines.append(f"| {_label(summary, method)} | " + " | ".join(cells) + " |")
  return lines + [""]


def _lift_text(entry: Mapping[str, Any]) -> str:
  lo, hi = entry["interval"]
  return f"{m.percent(entry['lift'])} [{m.percent(lo)}, {m.percent(hi)}]"


def headline(summary: Mapping[str, Any]) -> str:
  """Which method wins in real_context mode at recall@100, said plainly when not the model."""
  rows = {method: summary["metrics"][method][m.REAL_CONTEXT]
          for method in m.MODEL_METHODS + m.BASELINE_METHODS
          if m.REAL_CONTEXT in summary["metrics"].get(method, {})}
  if not rows.get(m.CONTEXTUAL, {}).get(m.COUNT):
    return f"No eval example has a real context: no method wins in {m.REAL_CONTEXT} mode."
  ours = rows[m.CONTEXTUAL][m.TARGET]
  rivals = [method for method in rows if method != m.CONTEXTUAL]
  if not rivals:
    return f"{m.CONTEXTUAL} is the only method evaluated in {m.REAL_CONTEXT} mode."
  best = max(rivals, key=lambda method: rows[method][m.TARGET])
  lift = summary.get("lifts", {}).get(m.REAL_CONTEXT, {}).get(best)
  paired = f"; the model's paired lift {_lift_text(lift)}" if lift else ""
  values = (f"{m.REAL_CONTEXT} {m.TARGET} {_cell(summary, best, m.REAL_CONTEXT, m.TARGET)} vs "
            f"{m.CONTEXTUAL} {_cell(summary, m.CONTEXTUAL, m.REAL_CONTEXT, m.TARGET)}{paired}")
  if rows[best][m.TARGET] > ours:
    return f"{best} beats the model: {values}."
  return (f"The model wins in {m.REAL_CONTEXT} mode at {m.TARGET}; the best other method is "
          f"{best}: {values}.")


def _lifts_section(summary: Mapping[str, Any]) -> List[str]:
  """The model's paired lift over each baseline, one column per mode."""
  lifts = summary.get("lifts") or {}
  modes = [mode for mode in m.MODES if lifts.get(mode)]
  if not modes:
    return []
  lines = [f"## Paired lift of `{m.CONTEXTUAL}` over each baseline ({m.TARGET})", "",
           "| baseline | " + " | ".join(modes) + " |", "| --- |" + " ---: |" * len(modes)]
  for baseline in m.BASELINE_METHODS:
    if any(baseline in lifts[mode] for mode in modes):
      cells = [_lift_text(lifts[mode][baseline]) if baseline in lifts[mode] else "—"
               for mode in modes]
      lines.append(f"| {baseline} | " + " | ".join(cells) + " |")
  return lines + [""]


def _slices_section(summary: Mapping[str, Any]) -> List[str]:
  """One table per slice: methods as rows, recall@10, recall@100 and n per mode as columns."""
  slices = summary.get("slices") or {}
  lines = [f"## Slices ({', '.join(m.SLICE_METRICS)})", ""] if slices else []
  for name in (name for name in m.SLICES if name in slices):
    lines += [f"### `{name}`", ""] + _slice_table(summary, slices[name]) + [""]
  return lines


def _slice_table(summary: Mapping[str, Any], part: Mapping[str, Any]) -> List[str]:
  """A slice's table, or a line saying it holds no eval example."""
  metrics = part["metrics"]
  if not any(row[m.COUNT] for by_mode in metrics.values() for row in by_mode.values()):
    return ["No eval example falls in this slice."]
  modes = [mode for mode in m.MODES if any(mode in by_mode for by_mode in metrics.values())]
  names = m.SLICE_METRICS + (m.COUNT,)
  columns = [f"{mode} {name}" for mode in modes for name in names]
  lines = ["| method | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
  for method in (method for method in m.METHODS if metrics.get(method)):
    by_mode = metrics[method]
    cells = [_value_cell(by_mode[mode], part["intervals"], method, mode, name)
             if mode in by_mode else "—" for mode in modes for name in names]
    lines.append(f"| {_label(summary, method)} | " + " | ".join(cells) + " |")
  return lines


def _parameter(blessing: Mapping[str, Any], name: str, lift: bool = True) -> str:
  """A threshold of the rule, with the value this evaluation used when the summary has it."""
  if name not in blessing:
    return f"`{name}`"
  return f"`{name}` ({m.percent(blessing[name]) if lift else blessing[name]})"


def _rule_notes(blessing: Mapping[str, Any]) -> List[str]:
  """The blessing rule with the thresholds this evaluation used."""
  return [
      f"- Blessing: in {m.REAL_CONTEXT} mode, the lower bound of the paired 95% lift over every "
      f"baseline ({', '.join(m.BASELINE_METHODS)}) must be above "
      f"{_parameter(blessing, 'margin')}; in {m.NO_CONTEXT} mode, the lower bound of the lift "
      f"over {m.POPULARITY} must be above {_parameter(blessing, 'no_context_floor_margin')}, and "
      f"{m.TARGET} must be at least {_parameter(blessing, 'no_context_ratio', lift=False)} x "
      f"{m.HISTORY_ONLY}'s (point estimates). With no real-context eval example only the "
      f"{m.NO_CONTEXT} rules decide."]


def render_markdown(summary: Mapping[str, Any]) -> str:
  """report.md: verdict, reasons and who wins first, then tables by mode, lifts, slices, the
  index and the definitions."""
  version = summary.get("model_version")
  lines = ["# Retrieval evaluation", "",
           f"Model version: {'unknown' if version is None else version}; "
           f"eval examples: {summary['eval_examples']}; context mode: "
           f"{summary.get('context_mode') or 'unknown'}.", "",
           f"**Blessed: {'yes' if summary['blessed'] else 'no'}**", ""]
  reasons = summary.get("blessing", {}).get("reasons", [])
  lines += [f"- {reason}" for reason in reasons] + ([""] if reasons else [])
  why = blessing_rule.why_not(summary)
  lines += [f"**{why}**", ""] if why else []
  modes = [mode for mode in m.MODES
           if any(mode in by_mode for by_mode in summary["metrics"].values())]
  if modes:
    lines += [f"**{headline(summary)}**", ""]
  for mode in modes:
    lines += _mode_table(summary, mode)
  if not modes:
    lines += ["No method was evaluated.", ""]
  lines += _lifts_section(summary) + _slices_section(summary)
  lines += _index_section(summary.get("index"))
  notes = [*_NOTES, *_rule_notes(summary.get("blessing", {}))]
  return "\n".join(lines + ["## How the metrics are defined", "", *notes, ""])


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
