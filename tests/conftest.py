"""Shared fixtures: hand-built input tables and the generator's tiny world."""
import glob
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


TINY_TRAIN_STEPS = 250


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_data, tmp_path_factory):
  """The whole training pipeline run once on tiny: (config, run summary)."""
  from ctxrec.pipeline import local_runner
  from ctxrec.pipeline.config import PipelineConfig
  from ctxrec.trainer.config import TrainerConfig
  from ctxrec.components.retrieval_evaluator.config import EvaluatorConfig
  # On tiny, few steps cannot beat the strong "related items" baseline: a tolerant blessing
  # exercises the push path; the default rule is tested on hand-made metrics and on demo.
  config = PipelineConfig(data_dir=tiny_data, output_dir=str(tmp_path_factory.mktemp("tiny_out")),
                          trainer=TrainerConfig(batch_size=128), train_steps=TINY_TRAIN_STEPS,
                          evaluator=EvaluatorConfig(margin=-0.5, no_context_ratio=0.5,
                                                    bootstrap_samples=50))
  return config, local_runner.run_local(config)


def latest_output(config, component: str, output: str) -> str:
  """The newest artifact folder of a component's output under the pipeline root."""
  folders = glob.glob(os.path.join(config.pipeline_root, component, output, "*"))
  assert folders, f"no {component}.{output} under {config.pipeline_root}"
  return max(folders, key=lambda p: int(os.path.basename(p)))


@pytest.fixture(scope="session")
def tiny_output(tiny_pipeline) -> Callable[[str, str], str]:
  """Finds the newest artifact folder of (component, output) of the tiny pipeline run."""
  return lambda component, output: latest_output(tiny_pipeline[0], component, output)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_pipeline) -> str:
  return os.path.join(latest_output(tiny_pipeline[0], "Trainer", "model"), "Format-Serving")
