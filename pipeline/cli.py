"""The `ctxrec` command: generate demo data, run the training and daily pipelines, manage the
published states, compile the pipelines for Kubeflow."""
import argparse
import os
import sys
import warnings
from typing import List, Optional

# Before TensorFlow loads: its C++ start-up lines (CUDA factories registered twice on a CPU
# machine, "could not find cuda drivers") bypass Python logging, so the log file cannot hold
# them and the console would; failures still surface as Python exceptions. Set it to 0 to see
# them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Google's client libraries (through TFX) warn on every import that Python 3.10, which TFX 1.16
# needs, will lose support; nothing a user can act on.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")

from ctxrec.serving.service.serve_config import ServeConfig, is_loopback  # noqa: E402  (no TF)

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="ctxrec", description="Contextual sequential two-tower retrieval as a TFX pipeline.")
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

  generate = commands.add_parser(
      "generate", help="write a synthetic world (events, items, users, ground truth) to a folder")
  from ctxrec.synthetic.profiles import PROFILES  # pylint: disable=g-import-not-at-top
  generate.add_argument("--profile", default="demo", choices=sorted(PROFILES))
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
  run.add_argument("--check-only", action="store_true",
                   help="only check the input tables and print what they hold and what is "
                   "dropped; writes nothing")
  run.add_argument("--no-cache", action="store_true", help="rerun every component")
  run.set_defaults(handler=_run)
  _add_daily(commands)
  _add_states(commands)
  _add_serve(commands)
  _add_compile_kfp(commands)
  return parser


def _add_daily(commands) -> None:
  daily = commands.add_parser(
      "daily", help="compute every user's history state for a serving day and publish them")
  daily.add_argument("--data", required=True,
                     help="folder with the events and items as of the serving day")
  daily.add_argument("--out", required=True,
                     help="output folder (shared with `ctxrec run`: pipeline root, MLMD)")
  daily.add_argument("--model", default=None,
                     help="a pushed version SERVING_DIR/<version>, or a model folder "
                     "(its newest version); default: the newest under OUT/serving/ctxrec")
  daily.add_argument("--serving-date", default="",
                     help="YYYY-MM-DD (UTC): the day the states answer requests; default: the "
                     "day after the last event")
  daily.add_argument("--store", default=None,
                     help="state store URI: sqlite:///PATH or redis://HOST:PORT/DB "
                     "(default: sqlite under OUT)")
  _add_timestamp_unit(daily, "unit of integer event timestamps, as for `ctxrec run`")
  daily.add_argument("--keep-versions", type=int, default=3,
                     help="versions the store keeps; older ones are deleted after the flip")
  daily.add_argument("--beam-arg", action="append", default=None, dest="beam_args",
                     help="a Beam pipeline argument (repeatable)")
  daily.add_argument("--cache", action="store_true",
                     help="reuse cached results of unchanged inputs (a cached publish does not "
                     "write to the store again)")
  daily.set_defaults(handler=_daily)


def _add_states(commands) -> None:
  states = commands.add_parser("states", help="list, inspect and roll back published states")
  where = states.add_mutually_exclusive_group(required=True)
  where.add_argument("--store", help="state store URI: sqlite:///PATH or redis://HOST:PORT/DB")
  where.add_argument("--out", help="the output folder whose embedded store to use")
  actions = states.add_subparsers(dest="action", required=True, metavar="ACTION")
  actions.add_parser("list", help="every version, newest first, the current one marked")
  actions.add_parser("current", help="print the current version")
  for name, text in (("rollback", "make an earlier complete version current again"),
                     ("delete", "delete a version that is not current")):
    action = actions.add_parser(name, help=text)
    action.add_argument("version", help="MODEL_VERSION@YYYY-MM-DD, as `list` prints it")
  states.set_defaults(handler=_states)


def _add_serve(commands) -> None:
  serve = commands.add_parser(
      "serve", help="run the retrieval service (HTTP; OpenAPI docs at /docs on loopback)")
  serve.add_argument("--serving-dir", required=True,
                     help="the folder holding ctxrec/<version>/ and index/<version>/, e.g. "
                     "OUT/serving")
  serve.add_argument("--store", required=True,
                     help="state store URI: sqlite:///PATH or redis://HOST:PORT/DB; its current "
                     "version names the release served")
  serve.add_argument("--tf-serving", default=None,
                     help="the context head through TF Serving: grpc://HOST:PORT or "
                     "http://HOST:PORT (default: the same signature in-process)")
  serve.add_argument("--host", default=ServeConfig.host,
                     help="address to bind (default loopback; 0.0.0.0 to accept others, then "
                     "with --auth-token-file)")
  serve.add_argument("--port", type=int, default=ServeConfig.port)
  serve.add_argument("--head-timeout-ms", type=float, default=ServeConfig.head_timeout_ms,
                     help="TF Serving deadline; past it the in-process head answers")
  serve.add_argument("--store-timeout-ms", type=float, default=ServeConfig.store_timeout_ms,
                     help="a networked state store's deadline per call")
  serve.add_argument("--reload-seconds", type=float, default=ServeConfig.reload_seconds,
                     help="how often to look for a newer complete release")
  serve.add_argument("--workers", type=int, default=ServeConfig.workers,
                     help="server processes, each loading the release (one per core)")
  serve.add_argument("--request-threads", type=int, default=ServeConfig.request_threads,
                     help="requests answered at once per process")
  serve.add_argument("--auth-token-file", default=None,
                     help="a file holding a bearer token: every path but /healthz and /readyz "
                     "then answers 401 without 'Authorization: Bearer <token>'")
  serve.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None,
                     help="serve /docs and /openapi.json (default: only when bound to loopback)")
  serve.set_defaults(handler=_serve)

  ask = commands.add_parser(
      "ask", help="start the service on a run's release and print live answers for a few users")
  ask.add_argument("--data", required=True, help="the run's data folder (to pick viewers)")
  ask.add_argument("--out", required=True, help="the run's output folder")
  ask.add_argument("--users", type=int, default=3)
  _add_timestamp_unit(ask, "unit of integer event timestamps (the sessions' ages), as for "
                      "`ctxrec run`")
  ask.set_defaults(handler=_ask)


def _add_timestamp_unit(command: argparse.ArgumentParser, help_text: str) -> None:
  from ctxrec.components.sequence_example_gen.config import TIMESTAMP_UNITS  # pylint: disable=g-import-not-at-top
  command.add_argument("--timestamp-unit", default="s", choices=tuple(TIMESTAMP_UNITS),
                       help=help_text)


def _add_pipeline_options(command: argparse.ArgumentParser, beam_help: str) -> None:
  """The options that shape the pipeline, shared by a local run and a cluster compile."""
  from ctxrec.components.sequence_example_gen import config as example_gen  # pylint: disable=g-import-not-at-top
  from ctxrec.trainer.config import CONTEXT_MODES, DEFAULT_TRAIN_STEPS, TrainerConfig  # pylint: disable=g-import-not-at-top
  defaults = example_gen.SequenceExampleGenConfig
  command.add_argument("--history-length", type=int, default=defaults.history_length)
  command.add_argument("--session-window-seconds", type=int,
                       default=defaults.session_window_seconds)
  command.add_argument("--session-views", type=int, default=defaults.session_views,
                       help="the last views of a session the examples and the model keep")
  command.add_argument("--eval-days", type=int, default=None,
                       help="the last N days of data form the eval split (default: "
                       f"{example_gen.EVAL_SHARE:.0%}% of the days the data spans, at most "
                       f"{example_gen.MAX_EVAL_DAYS})")
  command.add_argument("--eval-start-date", default=None,
                       help="YYYY-MM-DD (UTC): first day of the eval split; overrides --eval-days")
  command.add_argument("--min-train-examples", type=int,
                       default=defaults.min_train_examples,
                       help="fewer train examples stop the run before any work")
  _add_timestamp_unit(command, "unit of integer event timestamps: epoch seconds (s) or "
                      "milliseconds (ms); Arrow timestamp columns carry their own")
  command.add_argument("--demographic-columns", default="country,age_bucket",
                       help="comma-separated categorical columns of the users table")
  command.add_argument("--train-steps", type=int, default=DEFAULT_TRAIN_STEPS,
                       help="Trainer optimizer steps (at most TrainerConfig.max_epochs passes)")
  command.add_argument("--context-dropout", type=float, default=TrainerConfig.context_dropout,
                       help="rate at which the whole context is dropped per training example")
  command.add_argument("--context-mode", default=TrainerConfig.context_mode, choices=CONTEXT_MODES,
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
  compile_kfp.add_argument("--pipeline", default="training", choices=("training", "daily"),
                           help="the training pipeline, or the daily states pipeline")
  compile_kfp.add_argument("--serving-dir", default=None,
                           help="where the Pusher writes (default PIPELINE_ROOT/serving/ctxrec)")
  compile_kfp.add_argument("--beam-runner", default=beam_presets.DIRECT,
                           choices=beam_presets.RUNNERS)
  for option in ("project", "region", "temp-location", "flink-master", "spark-master"):
    compile_kfp.add_argument(f"--{option}", default=None)
  for option, text in (("model-uri", "a pushed version directory"),
                       ("serving-date", "YYYY-MM-DD"), ("store", "state store URI")):
    compile_kfp.add_argument(f"--{option}", default="",
                             help=f"daily: default of the {option.replace('-', '_')} runtime "
                             f"parameter ({text}; else set it at submission)")
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
          session_views=args.session_views, eval_days=args.eval_days, eval_start_date=args.eval_start_date,
          min_train_examples=args.min_train_examples, timestamp_unit=args.timestamp_unit,
          demographic_columns=tuple(c.strip() for c in args.demographic_columns.split(",")
                                    if c.strip())),
      pseudo_context=PseudoContextConfig(mode=args.context_mode,
                                         session_views=args.session_views),
      trainer=TrainerConfig(history_length=args.history_length,
                            session_views=args.session_views, context_dropout=args.context_dropout, context_mode=args.context_mode),
      train_steps=args.train_steps, **where)


def _run(args: argparse.Namespace) -> None:
  from ctxrec.pipeline import local_runner, preflight  # pylint: disable=g-import-not-at-top
  from ctxrec.pipeline.config import DEFAULT_BEAM_ARGS  # pylint: disable=g-import-not-at-top

  config = _pipeline_config(
      args, data_dir=os.path.abspath(args.data), output_dir=os.path.abspath(args.out),
      beam_pipeline_args=tuple(args.beam_args) if args.beam_args else DEFAULT_BEAM_ARGS,
      enable_cache=not args.no_cache, validate_only=args.validate_only)
  if args.check_only:
    checked = preflight.check_inputs(config)
    _print_warnings(checked)
    print("ctxrec run: the input tables pass the checks (nothing written)")
    _print_inputs(checked)
    return
  summary = local_runner.run_local(config, on_checked=lambda checked: _start_run(config, checked))
  print(f"\nctxrec run: done in {summary.seconds:.1f}s; outputs in {config.output_dir}")
  for run in summary.components:
    print(f"  {run.component:<24} {run.state:<7} {run.seconds:7.1f}s")
  print("  examples: " + ", ".join(f"{s}={n}" for s, n in sorted(summary.examples.items())))
  _print_inputs(summary.inputs, os.path.join(config.report_dir, preflight.INPUT_SUMMARY_FILE))
  if summary.report is not None:
    from ctxrec.components.retrieval_evaluator import blessing, report  # pylint: disable=g-import-not-at-top
    print(f"\nRetrieval over the full catalog ({summary.report['eval_examples']} eval examples); "
          f"report in {config.report_dir}")
    print(report.format_table(summary.report))
    version = summary.report["model_version"]
    print(f"blessed: {summary.report['blessed']}; "
          + (f"pushed version {version} to {config.serving_dir}" if version else "not pushed"))
    why = blessing.why_not(summary.report)
    if why:
      print(why)
    _print_index(summary.report.get("index"))


def _start_run(config, checked) -> None:
  """Once the inputs passed the checks: the run log under OUT/logs, and the checks' warnings."""
  from ctxrec.pipeline import run_log  # pylint: disable=g-import-not-at-top
  print(f"[ctxrec] full log: {run_log.attach(config.output_dir)}", file=sys.stderr)
  _print_warnings(checked)


def _print_warnings(checked) -> None:
  for warning in checked.warnings:
    print(f"ctxrec run: warning: {warning}", file=sys.stderr)


def _print_inputs(checked, where: Optional[str] = None) -> None:
  """The input tables' figures and every drop count, and the warnings again."""
  scan = checked.scan
  print(f"  input: {scan.rows} events ({scan.views} views, {scan.conversions} conversions kept, "
        f"{scan.users} users); eval from {checked.split.eval_start_date} "
        f"(train {checked.split.train_examples}, eval {checked.split.eval_examples} conversions)")
  drops = ", ".join(f"{name}={count}" for name, count in scan.drop_counts().items())
  print(f"  drops: {drops}" + (f" (in {where})" if where else ""))
  for warning in checked.warnings:
    print(f"  warning: {warning}")


def _daily(args: argparse.Namespace) -> None:
  from ctxrec.components.history_state_inferrer.config import HistoryStateInferrerConfig  # pylint: disable=g-import-not-at-top
  from ctxrec.components.state_publisher.config import StatePublisherConfig  # pylint: disable=g-import-not-at-top
  from ctxrec.pipeline import config as pipeline_config  # pylint: disable=g-import-not-at-top
  from ctxrec.pipeline import local_runner, run_log  # pylint: disable=g-import-not-at-top
  from ctxrec.serving import model_versions  # pylint: disable=g-import-not-at-top

  out = os.path.abspath(args.out)
  model = model_versions.resolve_version_dir(
      os.path.abspath(args.model) if args.model else pipeline_config.serving_dir(out))
  config = pipeline_config.DailyPipelineConfig(
      data_dir=os.path.abspath(args.data), output_dir=out, model_dir=model,
      store_uri=args.store or pipeline_config.default_store_uri(out),
      serving_date=args.serving_date, enable_cache=args.cache,
      publisher=StatePublisherConfig(keep_versions=args.keep_versions),
      inferrer=HistoryStateInferrerConfig(timestamp_unit=args.timestamp_unit),
      beam_pipeline_args=(tuple(args.beam_args) if args.beam_args
                          else pipeline_config.DEFAULT_BEAM_ARGS))
  print(f"[ctxrec] full log: {run_log.attach(out)}", file=sys.stderr)
  print(f"[ctxrec] model {model_versions.version_of(model)} ({model})", file=sys.stderr)
  summary = local_runner.run_daily_local(config)
  print(f"\nctxrec daily: done in {summary.seconds:.1f}s")
  for run in summary.components:
    print(f"  {run.component:<24} {run.state:<7} {run.seconds:7.1f}s")
  print(f"states {summary.states_version}: {summary.states} users with a history "
        f"({'already published' if summary.already_published else 'published'}), current in "
        f"{summary.store}")
  _print_index(summary.index)


def _print_index(index) -> None:
  if index:
    where = f" ({index['published_dir']})" if index["published_dir"] else ""
    print(f"index: {index['reason']}{where}")


def _states(args: argparse.Namespace) -> None:
  from ctxrec.pipeline import config as pipeline_config  # pylint: disable=g-import-not-at-top
  from ctxrec.serving import feature_store  # pylint: disable=g-import-not-at-top

  uri = args.store or pipeline_config.default_store_uri(args.out)
  with feature_store.open_store(uri) as store:
    if args.action == "list":
      _print_versions(store)
    elif args.action == "current":
      print(store.current() or "none")
    elif args.action == "rollback":
      store.rollback(feature_store.StatesVersion.parse(args.version))
      print(f"{store.uri}: current is now {args.version}")
    else:
      store.delete(feature_store.StatesVersion.parse(args.version))
      print(f"{store.uri}: deleted {args.version}")


def _print_versions(store) -> None:
  import datetime  # pylint: disable=g-import-not-at-top
  current = store.current()
  print(f"{'':2}{'version':<32}{'states':>10}  {'dim':>4}  {'status':<10} published (UTC)")
  for info in store.versions():
    published = (datetime.datetime.fromtimestamp(info.published, datetime.timezone.utc)
                 .strftime("%Y-%m-%d %H:%M:%S") if info.published else "-")
    print(f"{'*' if info.version == current else '':2}{str(info.version):<32}{info.rows:>10}  "
          f"{info.dimension:>4}  {'complete' if info.complete else 'partial':<10} {published}")


def _serve(args: argparse.Namespace) -> None:
  from ctxrec.serving.service import server  # pylint: disable=g-import-not-at-top
  config = ServeConfig(
      serving_dir=os.path.abspath(args.serving_dir), store_uri=args.store,
      tf_serving=args.tf_serving, host=args.host, port=args.port,
      head_timeout_ms=args.head_timeout_ms, store_timeout_ms=args.store_timeout_ms,
      reload_seconds=args.reload_seconds, workers=args.workers,
      request_threads=args.request_threads, auth_token_file=args.auth_token_file,
      docs=args.docs)
  if config.auth_token_file is None and not is_loopback(config.host):
    print(f"[ctxrec] warning: serving on {config.host} without --auth-token-file: anyone who "
          f"reaches the port may query it", file=sys.stderr)
  docs = " (docs at /docs)" if config.docs_enabled else ""
  print(f"[ctxrec] serving on http://{args.host}:{args.port}{docs}", file=sys.stderr)
  server.serve(config)


def _ask(args: argparse.Namespace) -> None:
  from ctxrec.pipeline import config as pipeline_config  # pylint: disable=g-import-not-at-top
  from ctxrec.pipeline import run_log  # pylint: disable=g-import-not-at-top
  from ctxrec.serving.service import server, showcase  # pylint: disable=g-import-not-at-top
  out = os.path.abspath(args.out)
  print(f"[ctxrec] full log: {run_log.attach(out)}", file=sys.stderr)
  config = ServeConfig(serving_dir=os.path.join(out, "serving"),
                       store_uri=pipeline_config.default_store_uri(out))
  showcase.live_answers(os.path.abspath(args.data), config, users=args.users,
                        timestamp_unit=args.timestamp_unit)


def _compile_kfp(args: argparse.Namespace) -> None:
  from ctxrec.kubeflow import beam_presets, compiler  # pylint: disable=g-import-not-at-top

  beam = beam_presets.BeamOptions(
      runner=args.beam_runner, image=args.image, project=args.project, region=args.region,
      temp_location=args.temp_location, flink_master=args.flink_master,
      spark_master=args.spark_master, extra_args=tuple(args.beam_args or ()))
  where = dict(data_dir=args.data_root, output_dir=args.pipeline_root,
               pipeline_root_uri=args.pipeline_root,
               beam_pipeline_args=tuple(beam_presets.beam_args(beam)))
  if args.pipeline == "daily":
    from ctxrec.pipeline.config import DailyPipelineConfig  # pylint: disable=g-import-not-at-top
    from ctxrec.components.history_state_inferrer.config import HistoryStateInferrerConfig  # pylint: disable=g-import-not-at-top
    config = DailyPipelineConfig(
        model_dir=args.model_uri, serving_date=args.serving_date, store_uri=args.store,
        inferrer=HistoryStateInferrerConfig(timestamp_unit=args.timestamp_unit), **where)
  else:
    config = _pipeline_config(args, serving_uri=args.serving_dir, **where)
  compiler.compile_pipeline(config, args.image, args.out)
  print(f"wrote {args.out}: pipeline {config.pipeline_name} on image {args.image}, "
        f"Beam on {args.beam_runner}")


def _user_error(exc: BaseException) -> Optional[BaseException]:
  """The user-facing error in an exception's chain (TFX may wrap executor errors), if any."""
  from ctxrec.pipeline import preflight  # pylint: disable=g-import-not-at-top
  from ctxrec.serving.feature_store import StateStoreError  # pylint: disable=g-import-not-at-top
  return preflight.find_in_chain(exc, (*preflight.REJECTIONS, StateStoreError))


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
