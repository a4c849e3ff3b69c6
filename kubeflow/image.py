"""Where the Dockerfile puts the project inside the image: paths Beam workers are given."""
from importlib import metadata

PROJECT_DIR = "/ctxrec"  # the Dockerfile's WORKDIR; keep both in step
PACKAGE = "ctxrec"


def sdist_path() -> str:
  """The project's source distribution built in the image, staged to Beam workers."""
  return f"{PROJECT_DIR}/dist/{PACKAGE}-{metadata.version(PACKAGE)}.tar.gz"
