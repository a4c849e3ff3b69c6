"""The Trainer's run_fn (module path `ctxrec.trainer.run.run_fn`): train, then export."""
import logging
import math
import time
from typing import List, Optional

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from ctxrec.trainer import export
from ctxrec.trainer.config import TrainerConfig
from ctxrec import progress
from ctxrec.trainer.input_pipeline import (count_examples, demographic_features, make_dataset,
                                           validation_cutoff)
from ctxrec.trainer.model import ContextualRetrievalModel
from ctxrec.trainer.validation import Validation

STEPS_PER_EXECUTION = 20  # fewer Python round trips per step: 1.8x examples/s on 2 cores
VALIDATION_ROUNDS = 10  # validation points over a run's steps (the untrained model is one more)


def build_model(config: TrainerConfig, tft_output: tft.TFTransformOutput) -> ContextualRetrievalModel:
  tf.keras.utils.set_random_seed(config.seed)
  model = ContextualRetrievalModel(config, tft_output,
                                   demographic_features(tft_output.raw_feature_spec()))
  model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate),
                steps_per_execution=STEPS_PER_EXECUTION)
  return model


def train(model: ContextualRetrievalModel, dataset: tf.data.Dataset, steps: int,
          log_dir: str = None, validation: Optional[Validation] = None) -> None:
  """Runs `steps` optimizer steps; zero steps still builds every weight (an untrained model).

  With `validation`, the weights kept are those of the round (of VALIDATION_ROUNDS, the
  untrained model included) with the highest held-out Recall@100 (validation.py): training
  never leaves a model worse on the held-out examples than the explicit terms it starts from."""
  model.compute_loss(next(iter(dataset)), training=False)  # builds every weight
  if steps <= 0:
    return
  callbacks = [tf.keras.callbacks.TensorBoard(log_dir=log_dir, update_freq=100)] if log_dir else []
  if validation is None:
    model.fit(dataset, steps_per_epoch=steps, epochs=1, callbacks=callbacks, verbose=2)
    return
  # the held-out labels count in the popularity only after validation (and so at export)
  model.set_label_counts(validation.trained_label_counts)
  try:
    _train_validated(model, dataset, steps, callbacks, validation)
  finally:
    model.set_label_counts(None)


def _train_validated(model: ContextualRetrievalModel, dataset: tf.data.Dataset, steps: int,
                     callbacks: list, validation: Validation) -> None:
  """Trains in VALIDATION_ROUNDS rounds and keeps the best round's weights (the untrained
  ones included)."""
  best = validation.recall(model)
  if best is None:  # no held-out example: nothing to validate on
    model.fit(dataset, steps_per_epoch=steps, epochs=1, callbacks=callbacks, verbose=2)
    return
  progress.report("Trainer: untrained, held-out Recall@100 %.4f", best)
  best_weights, best_step = model.get_weights(), 0
  done, per_round = 0, math.ceil(steps / min(VALIDATION_ROUNDS, steps))
  started = time.perf_counter()
  while done < steps:
    rounds = min(per_round, steps - done)
    model.fit(dataset, steps_per_epoch=rounds, epochs=1, callbacks=callbacks, verbose=0)
    done += rounds
    recall = validation.recall(model)
    if recall > best:
      best, best_weights, best_step = recall, model.get_weights(), done
    progress.report("Trainer: step %d/%d, held-out Recall@100 %.4f (best %.4f at step %d), "
                    "%.0f examples/s", done, steps, recall, best, best_step,
                    done * model.config.batch_size / (time.perf_counter() - started))
  model.set_weights(best_weights)
  progress.report("Trainer: kept the weights of step %d of %d (held-out Recall@100 %.4f)",
                  best_step, steps, best)


def capped_steps(steps: int, train_files: List[str], config: TrainerConfig) -> int:
  """`steps`, or fewer when they would pass over the train examples more than max_epochs times."""
  limit = math.ceil(steps * config.batch_size / config.max_epochs)
  examples = count_examples(train_files, limit)
  if examples >= limit:
    return steps
  capped = max(1, math.ceil(config.max_epochs * examples / config.batch_size))
  logging.warning("Trainer: %d train examples: %d steps of %d are %.0f epochs; training %d steps "
                  "(max_epochs %s)", examples, steps, config.batch_size,
                  steps * config.batch_size / max(examples, 1), capped, config.max_epochs)
  return capped


def run_fn(fn_args: FnArgs) -> None:
  """TFX Trainer entry point: hyperparameters come from custom_config (a TrainerConfig)."""
  config = TrainerConfig.from_custom_config(fn_args.custom_config)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  model = build_model(config, tft_output)
  spec = tft_output.raw_feature_spec()
  held_out_from = validation_cutoff(fn_args.train_files)
  dataset = make_dataset(fn_args.train_files, spec, config, config.batch_size, shuffle=True,
                         repeat=True, fixed_history=False, held_out_from=held_out_from)
  validation = (Validation.from_files(fn_args.train_files, spec, config, held_out_from)
                if held_out_from is not None else None)
  steps = fn_args.train_steps or 0  # 0 arrives as None
  if steps > 0:
    steps = capped_steps(steps, fn_args.train_files, config)
  logging.info("Training %s steps with %s", steps, config)
  train(model, dataset, steps, fn_args.model_run_dir, validation)
  export.export(model, fn_args.serving_model_dir)
