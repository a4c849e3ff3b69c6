"""`ctxrec daily` and `ctxrec states` as an operator meets them: results, messages, exit codes,
and bad input never touching the current version."""
import numpy as np
import pytest

from ctxrec.pipeline import cli
from ctxrec.serving import feature_store
from ctxrec.serving.feature_store import StatesVersion

T0 = 1767225600  # 2026-01-01
DAY = 86400
EVENTS = [("u1", "a", "conversion", T0), ("u1", "b", "view", T0 + DAY),
          ("u1", "b", "conversion", T0 + DAY + 60), ("u2", "a", "conversion", T0 + 2 * DAY),
          ("u3", "c", "view", T0 + 2 * DAY)]
EARLIER = StatesVersion("1", "2026-01-02")


@pytest.fixture
def store_with_a_version(tmp_path) -> str:
  uri = f"sqlite:///{str(tmp_path / 'states.sqlite').lstrip('/')}"
  with feature_store.open_store(uri) as store:
    store.publish(EARLIER, 4, np.zeros(4), [(["old"], np.ones((1, 4)))])
  return uri


def _daily(data, out, *extra) -> int:
  return cli.main(["daily", "--data", data, "--out", str(out), *extra])


def _current(uri):
  with feature_store.open_store(uri) as store:
    return store.current(), store.get("old", EARLIER)


@pytest.mark.slow
def test_daily_publishes_the_states_of_every_user_with_a_history(write_tables, tmp_path,
                                                                save_small_model, capsys):
  data, model = write_tables(EVENTS), save_small_model(version=5, dimension=4)
  uri = f"sqlite:///{str(tmp_path / 'states.sqlite').lstrip('/')}"
  assert _daily(data, tmp_path / "out", "--model", model, "--store", uri) == 0
  assert "states 5@2026-01-04: 2 users with a history (published)" in capsys.readouterr().out
  with feature_store.open_store(uri) as store:
    assert store.current() == StatesVersion("5", "2026-01-04")
    assert [s is not None for s in store.get_many(["u1", "u2", "u3"])] == [True, True, False]
  assert cli.main(["states", "--store", uri, "list"]) == 0
  assert "* 5@2026-01-04" in capsys.readouterr().out


@pytest.mark.slow
def test_a_model_without_encode_history_is_refused(write_tables, tmp_path, save_small_model,
                                                   store_with_a_version, capsys):
  model = save_small_model(without=("encode_history",))
  code = _daily(write_tables(EVENTS), tmp_path / "out", "--model", model, "--store",
                store_with_a_version)
  err = capsys.readouterr().err
  assert code == cli.EXIT_USAGE and "Traceback" not in err
  assert "has no 'encode_history' signature (it has context_head, embed_items)" in err
  assert _current(store_with_a_version)[0] == EARLIER


@pytest.mark.slow
def test_a_serving_date_before_the_first_event_is_refused(write_tables, tmp_path, save_small_model,
                                                          store_with_a_version, capsys):
  code = _daily(write_tables(EVENTS), tmp_path / "out", "--model", save_small_model(),
                "--store", store_with_a_version, "--serving-date", "2025-12-24")
  assert code == cli.EXIT_USAGE
  assert "serving_date 2025-12-24 is not after the first event's day (2026-01-01)" in \
      capsys.readouterr().err
  current, state = _current(store_with_a_version)
  assert current == EARLIER and state is not None


@pytest.mark.parametrize("store,message", [
    ("mongodb://db/x", "unknown state store scheme 'mongodb'"),
    ("redis://127.0.0.1:1/0", "cannot reach Redis"),
    ("sqlite:///no/such/folder/s.sqlite", "folder /no/such/folder does not exist")])
def test_a_bad_store_is_refused_before_any_work(write_tables, tmp_path, save_small_model, store,
                                                message, capsys):
  code = _daily(write_tables(EVENTS), tmp_path / "out", "--model", save_small_model(),
                "--store", store)
  assert code == cli.EXIT_USAGE and message in capsys.readouterr().err
  assert not (tmp_path / "out" / "pipeline_root").exists()


def test_without_a_pushed_model_daily_says_how_to_get_one(write_tables, tmp_path, capsys):
  assert _daily(write_tables(EVENTS), tmp_path / "out") == cli.EXIT_USAGE
  assert "no pushed model" in capsys.readouterr().err


def test_states_list_current_rollback_and_delete(store_with_a_version, capsys):
  uri = store_with_a_version
  later = StatesVersion("1", "2026-01-03")
  with feature_store.open_store(uri) as store:
    store.publish(later, 4, np.zeros(4), [(["new"], np.ones((1, 4)))])
  assert cli.main(["states", "--store", uri, "current"]) == 0
  assert capsys.readouterr().out.strip() == str(later)
  assert cli.main(["states", "--store", uri, "rollback", str(EARLIER)]) == 0
  assert _current(uri)[0] == EARLIER
  assert cli.main(["states", "--store", uri, "list"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert [line.split()[:2] for line in lines[-2:]] == [[str(later), "1"], ["*", str(EARLIER)]]
  assert cli.main(["states", "--store", uri, "delete", str(EARLIER)]) == cli.EXIT_USAGE
  assert "is current; roll back to another version" in capsys.readouterr().err
  assert cli.main(["states", "--store", uri, "rollback", "nonsense"]) == cli.EXIT_USAGE
  assert "MODEL_VERSION@YYYY-MM-DD" in capsys.readouterr().err
