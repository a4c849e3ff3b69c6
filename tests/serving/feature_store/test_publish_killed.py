"""A publish killed with SIGKILL half way leaves the previous version current and whole."""
import signal
import subprocess
import sys
import textwrap

import numpy as np

from ctxrec.serving import feature_store
from ctxrec.serving.feature_store import StatesVersion

DIM = 16
OLD = StatesVersion("1700000000", "2026-03-01")
NEW = StatesVersion("1700000001", "2026-03-02")
OLD_USERS = 5000
BATCH = 500

# The child publishes NEW in batches and, after three of them, says so and waits to be killed.
_CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from ctxrec.serving import feature_store
    from ctxrec.serving.feature_store import StatesVersion
    store = feature_store.open_store(sys.argv[1])
    def batches():
      for start in range(0, 20000, {batch}):
        if start == 3 * {batch}:
          print("mid-write", flush=True)
          time.sleep(120)
        users = [f"u{{i}}" for i in range(start, start + {batch})]
        yield users, np.ones((len(users), {dim}), np.float32)
    store.publish(StatesVersion("{model}", "{date}"), {dim}, np.zeros({dim}), batches())
""").format(batch=BATCH, dim=DIM, model=NEW.model_version, date=NEW.serving_date)


def _old_states() -> np.ndarray:
  return np.arange(OLD_USERS * DIM, dtype=np.float32).reshape(OLD_USERS, DIM)


def test_sigkill_mid_publish_keeps_the_previous_version_and_the_rerun_completes(store_uri):
  users = [f"u{i}" for i in range(OLD_USERS)]
  with feature_store.open_store(store_uri) as store:
    store.publish(OLD, DIM, np.zeros(DIM), [(users, _old_states())])

  child = subprocess.Popen([sys.executable, "-c", _CHILD, store_uri], stdout=subprocess.PIPE,
                           text=True)
  try:
    assert child.stdout.readline().strip() == "mid-write"
    child.send_signal(signal.SIGKILL)
  finally:
    child.wait(timeout=30)
    child.stdout.close()
  assert child.returncode == -signal.SIGKILL

  with feature_store.open_store(store_uri) as store:
    assert store.current() == OLD
    partial = store.info(NEW)
    assert not partial.complete and partial.rows == 3 * BATCH
    np.testing.assert_array_equal(np.stack(store.get_many(users)), _old_states())
    rerun = store.publish(NEW, DIM, np.zeros(DIM), [(users[:100], np.ones((100, DIM)))])
    assert (rerun.rows, store.current(), store.info(NEW).rows) == (100, NEW, 100)
    assert store.get(users[200]) is None  # nothing of the killed attempt survives the rerun
