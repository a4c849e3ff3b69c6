"""`context_head` through TF Serving's gRPC PredictionService, the model version pinned."""
import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from ctxrec.serving.head.head import OUTPUTS, ContextHead, HeadError, HeadOutput, Inputs
from ctxrec.transform import features as f

def predict_request(model_name: str, model_version: str,
                    inputs: Inputs) -> predict_pb2.PredictRequest:
  """A PredictRequest for `context_head` of exactly `model_version` (TensorProtos keep the
  inputs' shapes: rank 3 for the session's categories)."""
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.version.value = int(model_version)
  request.model_spec.signature_name = f.SIGNATURE_CONTEXT_HEAD
  for name, value in inputs.items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
  return request


class GrpcHead(ContextHead):
  """A TF Serving model server at host:port; `timeout_s` bounds every call."""

  def __init__(self, target: str, model_name: str, model_version: str, timeout_s: float = 0.1):
    super().__init__(model_version)
    self.target, self.model_name, self.timeout_s = target, model_name, timeout_s
    self._channel = grpc.insecure_channel(target)
    self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

  def embed(self, inputs: Inputs) -> HeadOutput:
    request = predict_request(self.model_name, self.model_version, inputs)
    try:
      response = self._stub.Predict(request, timeout=self.timeout_s)
    except grpc.RpcError as exc:
      code = exc.code()  # pylint: disable=no-member
      raise HeadError(f"TF Serving grpc://{self.target} {self.model_name}/{self.model_version}: "
                      f"{code.name}: {exc.details()}") from None  # pylint: disable=no-member
    if f.USER_EMBEDDING not in response.outputs:
      raise HeadError(f"TF Serving grpc://{self.target}: no {f.USER_EMBEDDING} in the answer "
                      f"(outputs: {sorted(response.outputs)})")
    return HeadOutput.from_outputs({name: tf.make_ndarray(response.outputs[name])
                                    for name in OUTPUTS if name in response.outputs})

  def close(self) -> None:
    self._channel.close()
