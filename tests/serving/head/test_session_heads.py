"""Session inputs (issue 22) through every head, on a tiny session model (session_model.py): the
service builds ids and ages [n, S] and categories and confidences [n, S, K] at the signature's
widths, and gRPC (TensorProto shapes) and REST (nested lists) carry them as the in-process call
does."""
import numpy as np
import pytest
import tensorflow as tf

from ctxrec.components import request_context
from ctxrec.components.request_context import Context, NO_CONTEXT, View
from ctxrec.serving.head import head as head_module
from ctxrec.serving.head.grpc_head import GrpcHead
from ctxrec.serving.head.in_process import InProcessHead
from ctxrec.serving.head.rest_head import RestHead
from ctxrec.serving.tf_serving.model_config import MODEL_NAME
from ctxrec.transform import features as f

import session_model  # noqa: E402  (tests/serving, put on sys.path by its conftest)
import tf_serving_double  # noqa: E402

S, K = session_model.VIEWS, session_model.CATEGORIES
SESSION = Context((View("i_1", ("c_1", "c_2"), (0.75, 0.25), 5),
                   View("", ("c_3",), (1.0,), 60),
                   View("i_2", ("c_1", "c_2", "c_3", "c_4", "c_5"),
                        (0.5, 0.25, 0.125, 0.0625, 0.0625), 90)))
LONG = Context(tuple(View(f"i_{n}", (f"c_{n}",), (1.0,), 10 * n) for n in range(S + 3)))


@pytest.fixture(scope="module")
def model_base(tmp_path_factory) -> str:
  base = str(tmp_path_factory.mktemp("session_model"))
  session_model.save(base, "1")
  return base


@pytest.fixture(scope="module")
def local_head(model_base):
  return InProcessHead(f"{model_base}/1")


@pytest.fixture(scope="module")
def double(model_base):
  with tf_serving_double.TfServingDouble(MODEL_NAME, model_base) as server:
    yield server


def _inputs(head: InProcessHead):
  states = np.random.default_rng(0).normal(size=(4, session_model.DIMENSION)).astype(np.float32)
  return head.signature.inputs(states, [SESSION, NO_CONTEXT, LONG, SESSION.truncated(1)],
                               [{session_model.COUNTRY: "FR"}, {}, {}, {}])


def test_the_signature_widths_are_read_from_the_context_specs(local_head):
  assert local_head.signature.session_widths == (S, K)
  assert head_module.session_widths({f.HISTORY_STATE: tf.TensorSpec([None, 3])}) == (0, 0)


def test_session_inputs_are_dense_at_the_signature_widths(local_head):
  inputs = _inputs(local_head)
  assert inputs[f.CONTEXT_ITEM_ID].shape == (4, S)
  assert inputs[f.CONTEXT_AGE_SECONDS].shape == (4, S)
  assert inputs[f.CONTEXT_AGE_SECONDS].dtype == np.int64
  assert inputs[f.CONTEXT_CATEGORIES].shape == (4, S, K)
  assert inputs[f.CONTEXT_CONFIDENCES].shape == (4, S, K)
  assert inputs[f.CONTEXT_CONFIDENCES].dtype == np.float32
  assert list(inputs[f.CONTEXT_ITEM_ID][0, :4]) == ["i_1", "", "i_2", ""]
  assert list(inputs[f.CONTEXT_AGE_SECONDS][0, :4]) == [5, 60, 90, 0]
  assert list(inputs[f.CONTEXT_CATEGORIES][0, 2]) == ["c_1", "c_2", "c_3", "c_4"]  # K kept
  assert list(inputs[f.CONTEXT_ITEM_ID][2]) == [f"i_{n}" for n in range(S)]  # S most recent
  assert not inputs[f.CONTEXT_CATEGORIES][1].any()
  assert list(inputs[session_model.COUNTRY]) == ["FR", "", "", ""]
  again = request_context.contexts_of_arrays(inputs)
  assert again[0].views[:2] == SESSION.views[:2] and again[0].views[2].categories == (
      "c_1", "c_2", "c_3", "c_4")
  assert again[1:] == (NO_CONTEXT, LONG.truncated(S), SESSION.truncated(1))


def test_inputs_follow_the_declared_dtypes():
  specs = {**session_model.SPECS, f.CONTEXT_AGE_SECONDS: tf.TensorSpec([None, 2], tf.int32),
           f.CONTEXT_ITEM_ID: tf.TensorSpec([None, 2], tf.string),
           f.CONTEXT_CATEGORIES: tf.TensorSpec([None, 2, 3], tf.string),
           f.CONTEXT_CONFIDENCES: tf.TensorSpec([None, 2, 3], tf.float32)}
  inputs = head_module.context_inputs(specs, [SESSION], [{}])
  assert inputs[f.CONTEXT_AGE_SECONDS].dtype == np.int32
  assert inputs[f.CONTEXT_CATEGORIES].shape == (1, 2, 3)


def test_every_view_changes_the_answer(local_head):
  states = np.zeros((3, session_model.DIMENSION), np.float32)
  answer = local_head.embed(local_head.signature.inputs(
      states, [SESSION, SESSION.truncated(2), Context(SESSION.views[::-1])], [{}] * 3))
  assert len({tuple(row) for row in answer.embeddings}) == 3


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_tf_serving_carries_sessions_as_the_in_process_head(local_head, double, protocol):
  inputs = _inputs(local_head)
  expected = local_head.embed(inputs)
  head = (GrpcHead(double.grpc_target.split("://", 1)[1], MODEL_NAME, "1", timeout_s=10)
          if protocol == "grpc" else RestHead(double.rest_url, MODEL_NAME, "1", timeout_s=10))
  try:
    answer = head.embed(inputs)
  finally:
    head.close()
  np.testing.assert_allclose(answer.embeddings, expected.embeddings, rtol=1e-6)
  np.testing.assert_array_equal(answer.boost_keys, expected.boost_keys)
  np.testing.assert_allclose(answer.boost_weights, expected.boost_weights, rtol=1e-6)
