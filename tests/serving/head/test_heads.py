"""The context head in process and through TF Serving (gRPC, REST): same answers, the model
version pinned, TF Serving's errors mapped, a circuit breaker around it."""
import logging
import os

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from ctxrec.components.request_context import Context, NO_CONTEXT, View
from ctxrec.serving import loopback
from ctxrec.serving.head.circuit_breaker import CircuitBreaker
from ctxrec.serving.head.grpc_head import GrpcHead, predict_request
from ctxrec.serving.head.head import HeadError
from ctxrec.serving.head.in_process import InProcessHead
from ctxrec.serving.head.rest_head import RestHead
from ctxrec.serving.tf_serving.model_config import MODEL_NAME
from ctxrec.transform import features as f


@pytest.fixture(scope="module")
def local_head(tiny_release):
  serving_dir, _, version = tiny_release
  return InProcessHead(os.path.join(serving_dir, MODEL_NAME, version))


def _inputs(head: InProcessHead, rows: int = 3):
  rng = np.random.default_rng(0)
  states = rng.normal(size=(rows, head.signature.dimension)).astype(np.float32)
  session = Context((View("i_1", ("c_1", "c_2"), (0.7, 0.3), 3),
                     View("i_2", ("c_2",), (1.0,), 40)))
  contexts = [session, NO_CONTEXT, Context((View("", ("c_2",), (1.0,)),))][:rows]
  return head.signature.inputs(states, contexts, [{}] * rows)


def _target(server) -> str:
  return server.grpc_target.split("://", 1)[1]


def test_inputs_are_padded_to_the_signature_widths(local_head):
  inputs = _inputs(local_head)
  views, width = local_head.signature.session_widths
  assert views >= 2 and width >= 1
  assert inputs[f.CONTEXT_ITEM_ID].shape == inputs[f.CONTEXT_AGE_SECONDS].shape == (3, views)
  assert inputs[f.CONTEXT_CATEGORIES].shape == (3, views, width)
  assert inputs[f.CONTEXT_CONFIDENCES].shape == (3, views, width)
  assert list(inputs[f.CONTEXT_CATEGORIES][0, 0][:3]) == ["c_1", "c_2", ""][:width]
  assert inputs[f.CONTEXT_CONFIDENCES].dtype == np.float32
  assert list(inputs[f.CONTEXT_ITEM_ID][:, 0]) == ["i_1", "", ""]
  assert list(inputs[f.CONTEXT_ITEM_ID][0, :3]) == ["i_1", "i_2", ""]
  assert list(inputs[f.CONTEXT_AGE_SECONDS][0, :3]) == [3, 40, 0]


def test_grpc_and_rest_answer_what_the_in_process_head_answers(local_head, tf_serving):
  inputs = _inputs(local_head)
  expected = local_head.embed(inputs)
  version = local_head.model_version
  for head in (GrpcHead(_target(tf_serving), MODEL_NAME, version, timeout_s=10),
               RestHead(tf_serving.rest_url, MODEL_NAME, version, timeout_s=10)):
    try:
      answer = head.embed(inputs)
      np.testing.assert_allclose(answer.embeddings, expected.embeddings, rtol=1e-5, atol=1e-6)
      np.testing.assert_array_equal(answer.boost_keys, expected.boost_keys)  # exact int64
      np.testing.assert_allclose(answer.boost_weights, expected.boost_weights, rtol=1e-5)
      assert expected.boost_keys.shape[1] > 0 and expected.boost_keys.any()
    finally:
      head.close()


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_unknown_model_or_version_is_not_found(local_head, tf_serving, protocol):
  make = ((lambda name, version: GrpcHead(_target(tf_serving), name, version, 10))
          if protocol == "grpc" else
          (lambda name, version: RestHead(tf_serving.rest_url, name, version, 10)))
  for name, version, expected in (("nope", local_head.model_version, "Specific(nope, "),
                                  (MODEL_NAME, "999", f"Specific({MODEL_NAME}, 999)")):
    head = make(name, version)
    with pytest.raises(HeadError, match="Servable not found for request") as caught:
      head.embed(_inputs(local_head))
    assert expected in str(caught.value)
    assert ("NOT_FOUND" if protocol == "grpc" else "HTTP 404") in str(caught.value)
    head.close()


def test_unknown_signature_is_invalid_argument(local_head, tf_serving):
  request = predict_request(MODEL_NAME, local_head.model_version, _inputs(local_head))
  request.model_spec.signature_name = "no_such_signature"
  with grpc.insecure_channel(_target(tf_serving)) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
      stub.Predict(request, timeout=10)
  assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert 'Serving signature name: "no_such_signature" not found' in caught.value.details()


def test_latest_version_answers_when_none_is_pinned(local_head, tf_serving):
  request = predict_request(MODEL_NAME, local_head.model_version, _inputs(local_head))
  request.model_spec.ClearField("version")
  with grpc.insecure_channel(_target(tf_serving)) as channel:
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, 10)
  assert response.model_spec.version.value == int(local_head.model_version)
  assert tf.make_ndarray(response.outputs[f.USER_EMBEDDING]).shape[0] == 3


def test_an_unreachable_server_is_a_head_error_naming_it(local_head):
  port = loopback.free_port()  # nothing listens there
  for head in (GrpcHead(f"127.0.0.1:{port}", MODEL_NAME, local_head.model_version, 0.2),
               RestHead(f"http://127.0.0.1:{port}", MODEL_NAME, local_head.model_version, 0.2)):
    with pytest.raises(HeadError, match=f"127.0.0.1:{port}"):
      head.embed(_inputs(local_head))
    head.close()


def test_in_process_head_does_not_rebuild_tables_per_call(local_head, caplog):
  """TensorFlow warns when a function re-initializes its lookup tables on every call (the
  Transform step's tracing does); the served signature must not."""
  inputs = _inputs(local_head)
  with caplog.at_level(logging.WARNING):
    first = local_head.embed(inputs)
    for _ in range(5):
      np.testing.assert_array_equal(local_head.embed(inputs).embeddings, first.embeddings)
  assert not [r for r in caplog.records if "re-initialized" in r.getMessage()]
  assert not [op for op in _signature_ops(local_head) if "InitializeTable" in op]


def _signature_ops(head: InProcessHead):
  """Op types run by the context_head signature's graph, including nested functions."""
  graph = head._function.graph  # pylint: disable=protected-access
  ops = [op.type for op in graph.get_operations()]
  for function in graph.as_graph_def().library.function:
    ops += [node.op for node in function.node_def]
  return ops


def test_circuit_breaker_opens_after_failures_and_probes_after_the_pause():
  now = [0.0]
  breaker = CircuitBreaker(failures=2, reset_after_s=5, clock=lambda: now[0])
  assert breaker.allow()
  breaker.failed()
  assert breaker.allow() and not breaker.is_open
  breaker.failed()
  assert breaker.is_open and not breaker.allow()
  now[0] = 5.0
  assert breaker.allow()  # one probe
  assert not breaker.allow()  # only one
  breaker.failed()
  assert not breaker.allow()
  now[0] = 10.0
  assert breaker.allow()
  breaker.succeeded()
  assert not breaker.is_open and breaker.allow()
