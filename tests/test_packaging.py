"""Every subpackage is listed in pyproject.toml, so the image's non-editable install has it."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pyproject() -> str:
  with open(os.path.join(ROOT, "pyproject.toml")) as handle:
    return handle.read()


def test_every_package_folder_is_listed():
  text = _pyproject()
  folders = dict(re.findall(r'^"(ctxrec[\w.]*)" = "(\w+)"$', text, re.MULTILINE))
  listed = set(re.findall(r'^\s+"(ctxrec[\w.]*)",$', text.split("packages = [")[1].split("]")[0],
                          re.MULTILINE))
  found = set()
  for package, folder in folders.items():
    for root, _, files in os.walk(os.path.join(ROOT, folder)):
      if "__init__.py" in files and "__pycache__" not in root:
        relative = os.path.relpath(root, os.path.join(ROOT, folder))
        found.add(package if relative == "." else f"{package}.{relative.replace(os.sep, '.')}")
  assert found - listed == set()
