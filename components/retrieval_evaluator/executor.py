"""RetrievalEvaluator executor: exact full-catalog metrics for models, baselines and oracles."""
import logging
import os
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from ctxrec.components import examples_io
from ctxrec.components.retrieval_evaluator import blessing as blessing_rule
from ctxrec.components.retrieval_evaluator import methods
from ctxrec.components.retrieval_evaluator import metrics as m
from ctxrec.components.retrieval_evaluator import report
from ctxrec.components.retrieval_evaluator import spec_keys as keys
from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig
from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen import spec_keys as example_gen_keys
from ctxrec.components.sequence_example_gen.config import SECONDS_PER_DAY, epoch_day
from ctxrec.trainer import exported_model
from ctxrec.transform import features as f

BLESSED_PROPERTY = "blessed"  # read by tfx Pusher (model_utils.is_model_blessed)


def config_from_exec_properties(exec_properties) -> EvaluatorConfig:
  return EvaluatorConfig(
      margin=float(exec_properties[keys.MARGIN]),
      no_context_floor_margin=float(exec_properties[keys.NO_CONTEXT_FLOOR_MARGIN]),
      no_context_ratio=float(exec_properties[keys.NO_CONTEXT_RATIO]),
      bootstrap_samples=int(exec_properties[keys.BOOTSTRAP_SAMPLES]),
      seed=int(exec_properties[keys.SEED]), context_mode=str(exec_properties[keys.CONTEXT_MODE]))


def _load(artifacts):
  model_uri = artifact_utils.get_single_uri(artifacts)
  return tf.saved_model.load(path_utils.serving_model_path(model_uri))


def _eval_files(examples) -> list:
  files = examples_io.split_files(examples, f.EVAL)
  if not files:
    raise ValueError(f"{examples.uri}: no eval split files to evaluate on")
  return files


def _pivot(stats: Dict[str, m.Statistics]) -> Tuple[Dict, Dict]:
  """metrics and intervals as method -> mode -> metric, from statistics by mode."""
  metrics: Dict[str, Dict] = {}
  intervals: Dict[str, Dict] = {}
  for mode, by_mode in stats.items():
    for method in by_mode.metrics:
      metrics.setdefault(method, {})[mode] = by_mode.metrics[method]
      intervals.setdefault(method, {})[mode] = by_mode.intervals[method]
  return metrics, intervals


def summarize(ranks: methods.Ranks, requests: exported_model.EvalRequests,
               slices: Dict[str, np.ndarray], config: EvaluatorConfig) -> Dict:
  """summary.json's content: statistics of every method, mode and slice (intervals over users),
  the model's paired lifts and the blessing."""
  rows = methods.mode_rows(requests)
  samples, seed = config.bootstrap_samples, config.seed
  stats = methods.statistics_by_mode(ranks, rows, requests.user_ids, samples, seed)
  metrics, intervals = _pivot(stats)
  lifts = {mode: by_mode.lifts for mode, by_mode in stats.items()}
  sliced = {name: _pivot(methods.statistics_by_mode(ranks, rows, requests.user_ids, samples,
                                                    seed, mask))
            for name, mask in slices.items()}
  blessed, reasons = blessing_rule.decide(metrics, lifts, config)
  return report.build_summary(
      metrics, intervals, len(requests.labels), blessed,
      {"reasons": reasons, **blessing_rule.parameters(config)}, lifts=lifts, slices=sliced,
      context_mode=config.context_mode)


class Executor(base_executor.BaseExecutor):
  """Scores every eval example against every item; blesses per the rule in blessing.py."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    config = config_from_exec_properties(exec_properties)
    data_dir = exec_properties[keys.INPUT_BASE]
    tables = input_tables.locate_tables(data_dir)
    examples = artifact_utils.get_single_instance(input_dict[keys.EXAMPLES])
    model, baseline = _load(input_dict[keys.MODEL]), _load(input_dict[keys.BASELINE_MODEL])
    catalog = methods.Catalog.load(tables.items)
    eval_start = epoch_day(examples.get_string_custom_property(example_gen_keys.EVAL_START_DATE))
    unit = examples.get_string_custom_property(example_gen_keys.TIMESTAMP_UNIT) or "s"
    counts = methods.train_counts(tables.events, catalog, eval_start * SECONDS_PER_DAY, unit)
    requests = exported_model.example_requests(
        _eval_files(examples), model.signatures[f.SIGNATURE_SERVING_DEFAULT])
    logging.info("RetrievalEvaluator: %d eval examples (%d with context) x %d items",
                 len(requests.labels), int(requests.has_context.sum()), len(catalog.items))
    ranks = methods.all_ranks(model, baseline, requests, catalog, counts.conversions, data_dir)
    slices = methods.slice_masks(requests, catalog, counts.events)
    summary = summarize(ranks, requests, slices, config)
    evaluation = artifact_utils.get_single_instance(output_dict[keys.EVALUATION])
    report.write_report(summary, evaluation.uri)
    self._write_blessing(output_dict, input_dict, summary["blessed"])
    logging.info("RetrievalEvaluator: blessed=%s\n%s\n%s", summary["blessed"],
                 "\n".join(summary["blessing"]["reasons"]), report.headline(summary))

  @staticmethod
  def _write_blessing(output_dict, input_dict, blessed: bool) -> None:
    blessing = artifact_utils.get_single_instance(output_dict[keys.BLESSING])
    name = "BLESSED" if blessed else "NOT_BLESSED"
    with tf.io.gfile.GFile(os.path.join(blessing.uri, name), "w") as handle:
      handle.write("")
    blessing.set_int_custom_property(BLESSED_PROPERTY, int(blessed))
    model = artifact_utils.get_single_instance(input_dict[keys.MODEL])
    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_int_custom_property("current_model_id", model.id)
