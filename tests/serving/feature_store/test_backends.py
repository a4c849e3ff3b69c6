"""One suite, both backends: what every StateStore must do (SQLite and a real redis-server)."""
import threading

import numpy as np
import pytest

from ctxrec import versions
from ctxrec.serving import feature_store
from ctxrec.serving.feature_store import StatesVersion, StateStoreError
DIM = 8
V1 = StatesVersion("1700000000", "2026-03-01")
V2 = StatesVersion("1700000000", "2026-03-02")


def _states(n: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def _users(n: int):
  return [f"u{i}" for i in range(n)]


def _batches(users, states, size=64):
  for start in range(0, len(users), size):
    yield users[start:start + size], states[start:start + size]


def _publish(store, version, n=300, seed=0, **kwargs):
  states = _states(n, seed)
  cold = np.full(DIM, 0.5, np.float32)
  result = store.publish(version, DIM, cold, _batches(_users(n), states), **kwargs)
  return states, result


def test_published_states_read_back_exactly(store):
  states, result = _publish(store, V1)
  assert (result.version, result.rows, result.already_published) == (V1, 300, False)
  assert store.current() == V1
  np.testing.assert_array_equal(store.get("u7"), states[7])
  found = store.get_many(["u3", "nobody", "u299"], V1)
  np.testing.assert_array_equal(found[0], states[3])
  assert found[1] is None
  np.testing.assert_array_equal(found[2], states[299])
  np.testing.assert_array_equal(store.cold_start(), np.full(DIM, 0.5, np.float32))


def test_states_are_raw_little_endian_float32(store, raw_state):
  states, _ = _publish(store, V1)
  assert raw_state(V1, "u5") == states[5].astype("<f4").tobytes()


def test_a_new_version_is_written_beside_the_current_one(store):
  old, _ = _publish(store, V1)
  seen_during_write = []

  def batches():
    new = _states(200, seed=1)
    for users, states in _batches(_users(200), new):
      seen_during_write.append((store.current(), store.get("u1")))
      yield users, states

  store.publish(V2, DIM, np.zeros(DIM), batches())
  assert all(current == V1 for current, _ in seen_during_write)
  assert all(np.array_equal(state, old[1]) for _, state in seen_during_write)
  assert store.current() == V2
  np.testing.assert_array_equal(store.get("u1", V1), old[1])
  np.testing.assert_array_equal(store.get("u1"), _states(200, seed=1)[1])


def test_a_failed_publish_leaves_the_current_version_and_its_rerun_completes(store):
  old, _ = _publish(store, V1)

  def failing():
    yield _users(10), _states(10, seed=2)
    raise OSError("worker lost")

  with pytest.raises(OSError):
    store.publish(V2, DIM, np.zeros(DIM), failing())
  assert store.current() == V1
  np.testing.assert_array_equal(store.get("u42"), old[42])
  assert not store.info(V2).complete
  with pytest.raises(StateStoreError, match="incomplete"):
    store.get("u1", V2)
  new, result = _publish(store, V2, n=50, seed=3)
  assert (store.current(), result.rows, store.info(V2).rows) == (V2, 50, 50)
  np.testing.assert_array_equal(store.get("u49"), new[49])


def test_the_pointer_flips_only_when_the_count_matches(store):
  _publish(store, V1)
  with pytest.raises(StateStoreError, match="holds 100 states after writing 100 "
                     r"\(expected 101\)"):
    _publish(store, V2, n=100, expected_rows=101)
  assert store.current() == V1


def test_duplicate_users_in_one_publish_are_refused(store):
  _publish(store, V1)
  states = _states(3, 0)
  with pytest.raises(StateStoreError, match="duplicate user ids"):
    store.publish(V2, DIM, np.zeros(DIM), [(["a", "b", "a"], states)])
  assert store.current() == V1


def test_a_second_publish_of_a_version_is_idempotent(store):
  states, _ = _publish(store, V1)
  _publish(store, V2)
  again, result = _publish(store, V1, expected_rows=300)
  assert result.already_published and result.rows == 300
  assert store.current() == V1
  assert store.info(V1).rows == 300
  np.testing.assert_array_equal(store.get("u9"), states[9])


def test_a_republish_with_other_contents_is_refused(store):
  _publish(store, V1)
  with pytest.raises(StateStoreError, match="already published with 300 states"):
    _publish(store, V1, n=10, expected_rows=10)


def test_states_of_the_wrong_dimension_are_refused_before_the_flip(store):
  _publish(store, V1)
  with pytest.raises(StateStoreError, match="dimension 8"):
    store.publish(V2, DIM, np.zeros(DIM), [(["a"], np.zeros((1, DIM + 1)))])
  assert store.current() == V1


def test_the_dimension_is_checked_on_read(store):
  _publish(store, V1)
  store._write(V1, ["u1"], [b"\x00" * 12])  # pylint: disable=protected-access
  with pytest.raises(StateStoreError, match="12 bytes, expected 32"):
    store.get("u1")


def test_only_the_newest_versions_are_kept(store):
  versions = [StatesVersion("1700000000", f"2026-03-0{day}") for day in range(1, 6)]
  pruned = []
  for version in versions:
    pruned.extend(_publish(store, version, n=5, keep=3)[1].pruned)
  assert pruned == versions[:2]
  assert [v.version for v in store.versions()] == versions[:1:-1]
  assert store.info(versions[0]) is None


def test_rollback_and_delete(store):
  old, _ = _publish(store, V1)
  _publish(store, V2, seed=5)
  store.rollback(V1)
  assert store.current() == V1
  np.testing.assert_array_equal(store.get("u0"), old[0])
  with pytest.raises(StateStoreError, match="is current"):
    store.delete(V1)
  store.delete(V2)
  assert [v.version for v in store.versions()] == [V1]
  with pytest.raises(StateStoreError, match="does not exist"):
    store.rollback(V2)


def test_reading_an_empty_store_says_what_to_run(store):
  assert store.current() is None
  with pytest.raises(StateStoreError, match="ctxrec daily"):
    store.get("u1")


def test_concurrent_reads_during_a_publish(store):
  old, _ = _publish(store, V1)
  errors = []

  def read():
    reader = feature_store.open_store(store.uri)
    try:
      for _ in range(200):
        state = reader.get("u3", V1)
        if not np.array_equal(state, old[3]):
          errors.append(state)
    finally:
      reader.close()

  thread = threading.Thread(target=read)
  thread.start()
  _publish(store, V2, n=2000, seed=9)
  thread.join()
  assert not errors


def test_version_text_round_trips(store):
  assert StatesVersion.parse(str(V1)) == V1
  with pytest.raises(ValueError, match="MODEL_VERSION@YYYY-MM-DD"):
    StatesVersion.parse("1700000000")


# ---- Versions are data, never paths (a store writer must not choose what the service loads).

NOT_MODEL_VERSIONS = ["/tmp/evil", "/tmp/evil/5", "../5", "5/../../x", "1.5", "v1", "-1", "0",
                      "01", " 1", "1\n", "", "9" * 20]


@pytest.mark.parametrize("model_version", NOT_MODEL_VERSIONS)
def test_a_model_version_that_is_not_a_positive_integer_is_refused(model_version):
  with pytest.raises(versions.VersionError, match="positive integer"):
    StatesVersion(model_version, "2026-03-01")
  with pytest.raises(versions.VersionError):
    StatesVersion.parse(f"{model_version}@2026-03-01")


@pytest.mark.parametrize("serving_date", ["2026-13-01", "2026-02-30", "../x", "20260301", "",
                                          "2026-03-01/..", "2026-3-1"])
def test_a_serving_date_that_is_not_a_date_is_refused(serving_date):
  with pytest.raises(versions.VersionError, match="YYYY-MM-DD"):
    StatesVersion("1700000000", serving_date)


def test_a_bad_version_written_directly_is_never_read_as_one(store, write_raw_current):
  _publish(store, V1)
  write_raw_current("/tmp/evil/1700000000@2026-03-01")
  with pytest.raises(versions.VersionError, match="positive integer"):
    store.current()
  assert [info.version for info in store.versions()] == [V1]  # the record is skipped
  _publish(store, V2)  # a publish still works, and makes a valid version current again
  assert store.current() == V2


def test_non_finite_states_are_refused_before_the_flip(store):
  _publish(store, V1)
  states = _states(10, seed=3)
  states[4, 2] = np.nan
  with pytest.raises(StateStoreError, match="NaN or infinite.*row 4"):
    store.publish(V2, DIM, np.zeros(DIM), [(_users(10), states)])
  with pytest.raises(StateStoreError, match="NaN or infinite"):
    store.publish(V2, DIM, np.full(DIM, np.inf), [(_users(10), _states(10, 3))])
  assert store.current() == V1


def test_redis_takes_its_password_from_the_environment_never_from_a_log(monkeypatch, caplog):
  from ctxrec.serving.feature_store import redis_store  # pylint: disable=g-import-not-at-top
  from ctxrec.serving.feature_store.local_redis import LocalRedis  # pylint: disable=g-import-not-at-top
  secret = "s3cret-never-logged"
  monkeypatch.delenv(redis_store.PASSWORD_VARIABLE, raising=False)
  with LocalRedis(password=secret) as server, caplog.at_level("DEBUG"):
    with pytest.raises(StateStoreError, match="cannot reach Redis"):
      feature_store.open_store(server.uri)
    monkeypatch.setenv(redis_store.PASSWORD_VARIABLE, secret)
    with feature_store.open_store(server.uri) as store:
      _publish(store, V1)
      assert store.current() == V1 and secret not in store.uri
    in_uri = server.uri.replace("redis://", f"redis://:{secret}@")
    monkeypatch.setenv(redis_store.PASSWORD_VARIABLE, "wrong")  # the URI's password wins
    with feature_store.open_store(in_uri) as store:
      assert store.current() == V1 and secret not in store.uri and ":***@" in store.uri
  assert secret not in caplog.text
