"""RetrievalEvaluator executor: exact full-catalog metrics for models, baselines and oracles."""
import logging
import os

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
  return EvaluatorConfig(margin=float(exec_properties[keys.MARGIN]),
                         no_context_ratio=float(exec_properties[keys.NO_CONTEXT_RATIO]),
                         bootstrap_samples=int(exec_properties[keys.BOOTSTRAP_SAMPLES]),
                         seed=int(exec_properties[keys.SEED]))


def _load(artifacts):
  model_uri = artifact_utils.get_single_uri(artifacts)
  return tf.saved_model.load(path_utils.serving_model_path(model_uri))


def _eval_files(examples) -> list:
  files = examples_io.split_files(examples, f.EVAL)
  if not files:
    raise ValueError(f"{examples.uri}: no eval split files to evaluate on")
  return files


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
    counts = methods.conversion_counts(tables.events, catalog, eval_start * SECONDS_PER_DAY)
    requests = exported_model.example_requests(
        _eval_files(examples), model.signatures[f.SIGNATURE_SERVING_DEFAULT])
    logging.info("RetrievalEvaluator: %d eval examples (%d with context) x %d items",
                 len(requests.labels), int(requests.has_context.sum()), len(catalog.items))
    ranks = methods.all_ranks(model, baseline, requests, catalog, counts, data_dir)
    metrics = {method: {mode: m.metrics_from_ranks(r) for mode, r in by_mode.items()}
               for method, by_mode in ranks.items()}
    intervals = {method: {mode: m.bootstrap_intervals(r, config.bootstrap_samples, config.seed)
                          for mode, r in by_mode.items()} for method, by_mode in ranks.items()}
    blessed, reasons = blessing_rule.decide(metrics, config)
    summary = report.build_summary(metrics, intervals, len(requests.labels), blessed,
                                   {"reasons": reasons, "rule": blessing_rule.TARGET,
                                    "margin": config.margin,
                                    "no_context_ratio": config.no_context_ratio})
    evaluation = artifact_utils.get_single_instance(output_dict[keys.EVALUATION])
    report.write_report(summary, evaluation.uri)
    self._write_blessing(output_dict, input_dict, blessed)
    logging.info("RetrievalEvaluator: blessed=%s\n%s", blessed, "\n".join(reasons))

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
