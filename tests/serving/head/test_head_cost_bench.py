"""bench/head_cost.py runs on a session model, with a model of before sessions as its baseline,
and prints one JSON line of costs and ratios."""
import importlib.util
import json
import os

import session_model  # noqa: E402  (tests/serving, put on sys.path by its conftest)

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench", "head_cost.py")


def _bench():
  spec = importlib.util.spec_from_file_location("head_cost", BENCH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_the_bench_prints_both_costs_and_their_ratios(tmp_path, capsys):
  model = session_model.save(str(tmp_path / "new"), "2")
  baseline = session_model.save_single_view(str(tmp_path / "old"), "1")
  _bench().main(["--model", model, "--baseline", baseline, "--repetitions", "20", "--block",
                 "5"])
  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert result["session_views"] == session_model.VIEWS
  for name in ("one_view_ms", "8_views_ms", "baseline_one_view_ms"):
    assert result[name]["median"] > 0
  assert result["ratio_8_views_to_one_view"] > 0 and result["ratio_8_views_to_baseline"] > 0
