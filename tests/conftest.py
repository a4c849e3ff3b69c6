"""Shared fixtures: hand-built input tables and the generator's tiny world."""
import os
from typing import Callable, Optional, Sequence

import pandas as pd
import pytest

from ctxrec.transform import features as f

DAY = 86400
T0 = 1767225600  # 2026-01-01 00:00 UTC


def _write(frame: pd.DataFrame, path: str) -> None:
  if path.endswith(".csv"):
    frame = frame.copy()
    for column in (f.CATEGORIES, f.CONFIDENCES):
      if column in frame:
        frame[column] = [f.CSV_LIST_SEPARATOR.join(str(v) for v in cell) for cell in frame[column]]
    frame.to_csv(path, index=False)
  else:
    frame.to_parquet(path, index=False)


@pytest.fixture
def write_tables(tmp_path) -> Callable:
  """Writes hand-built events/items/users to a folder, as Parquet (default) or CSV."""

  def write(events: Sequence[tuple], items: Optional[Sequence[tuple]] = None,
            users: Optional[Sequence[tuple]] = None, fmt: str = "parquet",
            folder: str = "data") -> str:
    out = os.path.join(tmp_path, folder)
    os.makedirs(out, exist_ok=True)
    if items is None:
      ids = sorted({e[1] for e in events})
      items = [(i, ["c_" + i], [0.9]) for i in ids]
    _write(pd.DataFrame(list(events), columns=list(f.EVENTS_COLUMNS)),
           os.path.join(out, f"{f.EVENTS}.{fmt}"))
    _write(pd.DataFrame(list(items), columns=list(f.ITEMS_COLUMNS)),
           os.path.join(out, f"{f.ITEMS}.{fmt}"))
    if users is not None:
      _write(pd.DataFrame(list(users), columns=[f.USER_ID, *f.DEFAULT_DEMOGRAPHIC_COLUMNS]),
             os.path.join(out, f"{f.USERS}.{fmt}"))
    return out

  return write


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
  """The generator's tiny profile (seed 7), written once per test session."""
  from ctxrec.synthetic import generator, profiles
  out = str(tmp_path_factory.mktemp("tiny"))
  generator.generate(profiles.PROFILES["tiny"], 7, out)
  return out
