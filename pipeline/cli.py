"""The `ctxrec` command: generate demo data, run the pipeline, compile it for Kubeflow."""
import argparse
import os
import sys
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: keep output readable

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="ctxrec", description="Contextual sequential two-tower retrieval as a TFX pipeline.")
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

  generate = commands.add_parser(
      "generate", help="write a synthetic world (events, items, users, ground truth) to a folder")
  generate.add_argument("--profile", default="demo", choices=("tiny", "demo", "large"))
  generate.add_argument("--seed", type=int, default=1)
  generate.add_argument("--out", required=True, help="folder to write the tables to")
  generate.set_defaults(handler=_generate)

  run = commands.add_parser("run", help="run the training pipeline locally on a data folder")
  run.add_argument("--data", required=True, help="folder with events, items and (optional) users")
  run.add_argument("--out", required=True, help="output folder: pipeline root, MLMD, reports")
  _add_pipeline_options(run, beam_help="a Beam pipeline argument (repeatable), e.g. "
                        "--beam-arg=--direct_num_workers=2")
  run.add_argument("--validate-only", action="store_true",
                   help="stop after the data checks (examples, statistics, schema, anomalies)")
  run.add_argument("--no-cache", action="store_true", help="rerun every component")
  run.set_defaults(handler=_run)
  _add_compile_kfp(commands)
  return parser


def _add_pipeline_options(command: argparse.ArgumentParser, beam_help: str) -> None:
  """The options that shape the pipeline, shared by a local run and a cluster compile."""
  command.add_argument("--history-length", type=int, default=50)
  command.add_argument("--session-window-seconds", type=int, default=3600)
  command.add_argument("--eval-days", type=int, default=7,
                       help="the last N days of data form the eval split")
  command.add_argument("--eval-start-date", default=None,
                       help="YYYY-MM-DD (UTC): first day of the eval split; overrides --eval-days")
  command.add_argument("--demographic-columns", default="country,age_bucket",
                       help="comma-separated categorical columns of the users table")
  command.add_argument("--train-steps", type=int, default=1000, help="Trainer optimizer steps")
  command.add_argument("--context-dropout", type=float, default=0.5,
                       help="rate at which the whole context is dropped per training example")
  command.add_argument("--context-mode", default="categories", choices=("categories", "item"),
                       help="pseudo-context and model context: categories only, or also the "
                       "item id")
  command.add_argument("--beam-arg", action="append", default=None, dest="beam_args",
                       help=beam_help)


def _add_compile_kfp(commands) -> None:
  from ctxrec.kubeflow import beam_presets  # pylint: disable=g-import-not-at-top
  compile_kfp = commands.add_parser(
      "compile-kfp", help="compile the pipeline for Kubeflow Pipelines v2 / Vertex Pipelines")
  compile_kfp.add_argument("--image", required=True, help="the project image every step runs")
  compile_kfp.add_argument("--pipeline-root", required=True, help="e.g. gs://bucket/ctxrec")
  compile_kfp.add_argument("--out", required=True,
                           help="FILE.json (PipelineJob, for Vertex) or FILE.yaml (PipelineSpec, "
                           "for the kfp Client)")
  compile_kfp.add_argument("--data-root", default="",
                           help="default of the data_root runtime parameter (else set it at "
                           "submission)")
  compile_kfp.add_argument("--serving-dir", default=None,
                           help="where the Pusher writes (default PIPELINE_ROOT/serving/ctxrec)")
  compile_kfp.add_argument("--beam-runner", default=beam_presets.DIRECT,
                           choices=beam_presets.RUNNERS)
  for option in ("project", "region", "temp-location", "flink-master", "spark-master"):
    compile_kfp.add_argument(f"--{option}", default=None)
  _add_pipeline_options(compile_kfp, beam_help="a Beam pipeline argument (repeatable), after the "
                        "runner's preset, so it overrides it")
  compile_kfp.set_defaults(handler=_compile_kfp)


def _generate(args: argparse.Namespace) -> None:
  from ctxrec.synthetic import generator, profiles  # pylint: disable=g-import-not-at-top
  summary = generator.generate(profiles.PROFILES[args.profile], args.seed, args.out,
                               progress=lambda line: print(line, file=sys.stderr, flush=True))
  print(f"wrote {args.out}: {summary.users} users, {summary.items} items, {summary.events} events "
        f"({summary.conversions} conversions) in {summary.elapsed_seconds:.1f}s")


def _pipeline_config(args: argparse.Namespace, **where):
  """The PipelineConfig the shared options describe; `where` gives data and output locations."""
  from ctxrec.components.pseudo_context.config import PseudoContextConfig  # pylint: disable=g-import-not-at-top
  from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig  # pylint: disable=g-import-not-at-top
  from ctxrec.pipeline.config import PipelineConfig  # pylint: disable=g-import-not-at-top
  from ctxrec.trainer.config import TrainerConfig  # pylint: disable=g-import-not-at-top

  return PipelineConfig(
      example_gen=SequenceExampleGenConfig(
          history_length=args.history_length,
          session_window_seconds=args.session_window_seconds,
          eval_days=args.eval_days, eval_start_date=args.eval_start_date,
          demographic_columns=tuple(c.strip() for c in args.demographic_columns.split(",")
                                    if c.strip())),
      pseudo_context=PseudoContextConfig(mode=args.context_mode),
      trainer=TrainerConfig(history_length=args.history_length,
                            context_dropout=args.context_dropout, context_mode=args.context_mode),
      train_steps=args.train_steps, **where)


def _run(args: argparse.Namespace) -> None:
  from ctxrec.pipeline import local_runner, run_log  # pylint: disable=g-import-not-at-top
  from ctxrec.pipeline.config import DEFAULT_BEAM_ARGS  # pylint: disable=g-import-not-at-top

  config = _pipeline_config(
      args, data_dir=os.path.abspath(args.data), output_dir=os.path.abspath(args.out),
      beam_pipeline_args=tuple(args.beam_args) if args.beam_args else DEFAULT_BEAM_ARGS,
      enable_cache=not args.no_cache, validate_only=args.validate_only)
  log_path = run_log.attach(config.output_dir)
  print(f"[ctxrec] full log: {log_path}", file=sys.stderr)
  summary = local_runner.run_local(config)
  print(f"\nctxrec run: done in {summary.seconds:.1f}s; outputs in {config.output_dir}")
  for run in summary.components:
    print(f"  {run.component:<24} {run.state:<7} {run.seconds:7.1f}s")
  print("  examples: " + ", ".join(f"{s}={n}" for s, n in sorted(summary.examples.items())))
  if summary.report is not None:
    from ctxrec.components.retrieval_evaluator import report  # pylint: disable=g-import-not-at-top
    print(f"\nRetrieval over the full catalog ({summary.report['eval_examples']} eval examples); "
          f"report in {config.report_dir}")
    print(report.format_table(summary.report))
    version = summary.report["model_version"]
    print(f"blessed: {summary.report['blessed']}; "
          + (f"pushed version {version} to {config.serving_dir}" if version else "not pushed"))


def _compile_kfp(args: argparse.Namespace) -> None:
  from ctxrec.kubeflow import beam_presets, compiler  # pylint: disable=g-import-not-at-top

  beam = beam_presets.BeamOptions(
      runner=args.beam_runner, image=args.image, project=args.project, region=args.region,
      temp_location=args.temp_location, flink_master=args.flink_master,
      spark_master=args.spark_master, extra_args=tuple(args.beam_args or ()))
  config = _pipeline_config(
      args, data_dir=args.data_root, output_dir=args.pipeline_root,
      pipeline_root_uri=args.pipeline_root, serving_uri=args.serving_dir,
      beam_pipeline_args=tuple(beam_presets.beam_args(beam)))
  compiler.compile_pipeline(config, args.image, args.out)
  print(f"wrote {args.out}: pipeline {config.pipeline_name} on image {args.image}, "
        f"Beam on {args.beam_runner}")


def _user_error(exc: BaseException) -> Optional[BaseException]:
  """The user-facing error in an exception's chain (TFX may wrap executor errors), if any."""
  from ctxrec.components.anomalies_gate.executor import DataAnomaliesError  # pylint: disable=g-import-not-at-top
  from ctxrec.components.sequence_example_gen.input_tables import InputError  # pylint: disable=g-import-not-at-top
  while exc is not None:
    if isinstance(exc, (InputError, DataAnomaliesError)):
      return exc
    exc = exc.__cause__ or exc.__context__
  return None


def main(argv: Optional[List[str]] = None) -> int:
  args = _parser().parse_args(argv)
  try:
    args.handler(args)
  except Exception as exc:  # pylint: disable=broad-except
    user_error = _user_error(exc)
    if user_error is None and not isinstance(exc, ValueError):
      raise
    print(f"ctxrec {args.command}: error: {user_error or exc}", file=sys.stderr)
    return EXIT_USAGE
  return 0


if __name__ == "__main__":
  sys.exit(main())
