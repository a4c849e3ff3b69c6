"""Training throughput (examples/second) of the contextual model on the demo profile.

Runs the pipeline up to the Trainer on demo data (cached after the first time), then times
training steps in this process after a warm-up, so the figure excludes tracing and I/O setup.
Usage: .venv/bin/python bench/train_throughput.py [--data data/demo] [--out out/bench-train]
"""
import argparse
import os
import time

import ctxrec  # noqa: F401  (selects tf-keras before TensorFlow loads)
import tensorflow_transform as tft

from ctxrec.pipeline import local_runner
from ctxrec.pipeline.config import PipelineConfig
from ctxrec.synthetic import generator, profiles
from ctxrec.trainer import run
from ctxrec.trainer.config import TrainerConfig
from ctxrec.trainer.input_pipeline import make_dataset


def _latest(root: str, component: str, output: str) -> str:
  folder = os.path.join(root, component, output)
  return os.path.join(folder, max(os.listdir(folder), key=int))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default="data/demo")
  parser.add_argument("--out", default="out/bench-train")
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--warmup", type=int, default=20)
  parser.add_argument("--batch-size", type=int, default=TrainerConfig().batch_size)
  args = parser.parse_args()
  if not os.path.exists(os.path.join(args.data, "events.parquet")):
    generator.generate(profiles.PROFILES["demo"], 1, args.data)
  config = PipelineConfig(data_dir=os.path.abspath(args.data), output_dir=os.path.abspath(args.out),
                          train_steps=1)
  local_runner.run_local(config)
  trainer_config = TrainerConfig(batch_size=args.batch_size)
  tft_output = tft.TFTransformOutput(_latest(config.pipeline_root, "Transform", "transform_graph"))
  files = [os.path.join(_latest(config.pipeline_root, "PseudoContextAugmenter",
                                "augmented_examples"), "Split-train", "*.gz")]
  model = run.build_model(trainer_config, tft_output)
  dataset = make_dataset(files, tft_output.raw_feature_spec(), trainer_config, args.batch_size,
                         shuffle=True, repeat=True, fixed_history=False)
  run.train(model, dataset, args.warmup)
  started = time.perf_counter()
  run.train(model, dataset, args.steps)
  seconds = time.perf_counter() - started
  print(f"contextual model, batch {args.batch_size}: {args.steps} steps in {seconds:.1f}s = "
        f"{args.steps * args.batch_size / seconds:,.0f} training examples/second")


if __name__ == "__main__":
  main()
