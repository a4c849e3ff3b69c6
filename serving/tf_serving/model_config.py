"""TF Serving's models.config for ctxrec, regenerated at each release so the old and the new
version are both loaded while the retrieval service's pointer flips.

Labels (`stable`/`canary`) are only for ad hoc clients: the retrieval service pins the version
number in every request. TF Serving refuses, on a reload, a label on a version that is not yet
available: add the new version first, label it once GET /v1/models/ctxrec shows it AVAILABLE
(or run the server with --allow_version_labels_for_unavailable_models).

  python -m ctxrec.serving.tf_serving.model_config --serving-dir OUT/serving/ctxrec \
      [--keep 2] [--base-path /models/ctxrec] > models.config
"""
import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

# Defined here, where TF Serving's layout is described, and imported by the pipeline and the
# service: this module loads without TensorFlow (a release step runs it on its own).
MODEL_NAME = "ctxrec"  # the TF Serving model name the Pusher writes under
DEFAULT_BASE_PATH = f"/models/{MODEL_NAME}"
SAVED_MODEL_FILE = "saved_model.pb"


def _checked_versions(versions: Sequence[int]) -> List[int]:
  """The versions as TF Serving's `specific` policy needs them: positive, unique, some."""
  versions = list(versions)
  if not versions:
    raise ValueError("versions: empty: a model config must load at least one version; pass "
                     "the pushed version(s), e.g. [old, new] during a release")
  bad = [v for v in versions if isinstance(v, bool) or not isinstance(v, int) or v <= 0]
  if bad:
    raise ValueError(f"versions {versions}: {bad} not positive integers: TF Serving versions "
                     f"are the integer folder names under the model's base path (e.g. 1795864053)")
  duplicates = sorted({v for v in versions if versions.count(v) > 1})
  if duplicates:
    raise ValueError(f"versions {versions}: {duplicates} listed more than once: list each "
                     f"version to load once")
  return versions


def _check_labels(labels: Dict[str, int], versions: List[int]) -> None:
  """A label must be a non-empty name on a loaded version, or TF Serving refuses it."""
  for label, version in labels.items():
    if not isinstance(label, str) or not label:
      raise ValueError(f"labels {labels}: label {label!r} is not a non-empty string: name labels "
                       f"like 'stable' or 'canary'")
    if version not in versions:
      raise ValueError(f"labels {labels}: label {label!r} points at version {version}, which "
                       f"is not among the loaded versions {versions}: add it to versions or "
                       f"point the label at one of them")


def model_server_config(versions: Sequence[int], base_path: str = DEFAULT_BASE_PATH,
                        name: str = MODEL_NAME,
                        labels: Optional[Dict[str, int]] = None) -> str:
  """A text-format ModelServerConfig loading exactly `versions`, so a release swap is explicit."""
  versions = _checked_versions(versions)
  _check_labels(labels or {}, versions)
  config = model_server_config_pb2.ModelServerConfig()
  model = config.model_config_list.config.add()
  model.name = name
  model.base_path = base_path
  model.model_platform = "tensorflow"
  model.model_version_policy.specific.versions.extend(versions)
  for label, version in sorted((labels or {}).items()):
    model.version_labels[label] = version
  return text_format.MessageToString(config)


def versions_in(serving_dir: str) -> List[int]:
  """The pushed versions under a local model directory (integer folders holding saved_model.pb)."""
  if not os.path.isdir(serving_dir):
    return []
  return sorted(int(name) for name in os.listdir(serving_dir)
                if name.isdigit() and int(name) > 0
                and os.path.isfile(os.path.join(serving_dir, name, SAVED_MODEL_FILE)))


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog="python -m ctxrec.serving.tf_serving.model_config",
      description="Print TF Serving's models.config loading the newest pushed versions.")
  parser.add_argument("--serving-dir", required=True,
                      help="local model directory holding <version>/saved_model.pb, "
                           "e.g. OUT/serving/ctxrec")
  parser.add_argument("--keep", type=int, default=2,
                      help="how many of the newest versions to load (default 2: old and new)")
  parser.add_argument("--base-path", default=DEFAULT_BASE_PATH,
                      help="where TF Serving sees the model directory "
                           f"(default {DEFAULT_BASE_PATH})")
  parser.add_argument("--name", default=MODEL_NAME,
                      help=f"TF Serving model name (default {MODEL_NAME})")
  return parser.parse_args(argv)


def _header(serving_dir: str, kept: List[int]) -> str:
  """Says where the file came from, so nobody edits a generated config by hand."""
  return (f"# Generated by python -m ctxrec.serving.tf_serving.model_config from {serving_dir}:\n"
          f"# the newest {len(kept)} pushed version(s), loaded side by side so a release swap\n"
          f"# keeps the old one serving; regenerate at each release.\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Writes the config for the newest `--keep` versions to stdout; errors go to stderr."""
  args = _parse_args(argv)
  if args.keep < 1:
    print(f"--keep {args.keep}: must be at least 1 (2 keeps the previous version loaded "
          f"during a release)", file=sys.stderr)
    return 2
  versions = versions_in(args.serving_dir)
  if not versions:
    print(f"--serving-dir {args.serving_dir}: no pushed version (<integer>/{SAVED_MODEL_FILE}) "
          f"found: point it at the Pusher's model directory, e.g. OUT/serving/ctxrec, after "
          f"`ctxrec run` has pushed a blessed model", file=sys.stderr)
    return 1
  kept = versions[-args.keep:]
  sys.stdout.write(_header(args.serving_dir, kept)
                   + model_server_config(kept, args.base_path, args.name))
  return 0


if __name__ == "__main__":
  sys.exit(main())
