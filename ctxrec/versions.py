"""Version strings are data, never paths: the one rule for model versions, serving dates and
index versions, checked where a version is written and again where it is read.

A model version names a folder (SERVING_DIR/<model name>/<version>/, SERVING_DIR/index/<version>/)
and arrives through the state store, which other writers share: a version that were a path
(`/tmp/x`, `../x`) would let whoever writes the store choose the SavedModel the service loads.
"""
import datetime
import re

_MODEL_VERSION = re.compile(r"[1-9][0-9]{0,18}")  # TF Serving's layout: a positive int64
_SERVING_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FINGERPRINT = re.compile(r"[0-9a-f]{12,64}")
INDEX_FINGERPRINT_CHARS = 12  # of the catalog's sha256, in an index version
MAX_MODEL_VERSION = 2**63 - 1


class VersionError(ValueError):
  """A version string that does not follow its fixed pattern (possibly a path)."""


def _shown(value: object) -> str:
  text = repr(value)
  return text if len(text) <= 80 else text[:77] + "..."


def model_version(value: object, where: str = "model version") -> str:
  """`value` when it is a positive integer in decimal (TF Serving's version folders)."""
  if not isinstance(value, str) or not _MODEL_VERSION.fullmatch(value) or (
      int(value) > MAX_MODEL_VERSION):
    raise VersionError(f"{where} {_shown(value)} is not a model version: a model version is a "
                       f"positive integer (TF Serving's MODEL_DIR/<version>/ layout), never a path")
  return value


def serving_date(value: object, where: str = "serving date") -> str:
  """`value` when it is a real calendar date written YYYY-MM-DD."""
  valid = isinstance(value, str) and _SERVING_DATE.fullmatch(value)
  try:
    valid = valid and datetime.date.fromisoformat(value) is not None
  except ValueError:
    valid = False
  if not valid:
    raise VersionError(f"{where} {_shown(value)} is not a serving date: write YYYY-MM-DD")
  return value


def catalog_fingerprint(value: object, where: str = "catalog fingerprint") -> str:
  """`value` when it is a lowercase hex digest."""
  if not isinstance(value, str) or not _FINGERPRINT.fullmatch(value):
    raise VersionError(f"{where} {_shown(value)} is not a catalog fingerprint (lowercase hex)")
  return value


def index_version(model: str, fingerprint: str) -> str:
  """`<model version>-<first 12 hex of the catalog fingerprint>`: one index of one catalog."""
  return (f"{model_version(model)}-"
          f"{catalog_fingerprint(fingerprint)[:INDEX_FINGERPRINT_CHARS]}")

