"""TfServingDouble: a TEST DOUBLE of `tensorflow_model_server`, which cannot be installed on
these machines. It serves the real SavedModels of a model base path (BASE/<version>/) over the
official `tensorflow_serving.apis` PredictionService (gRPC) and TF Serving's REST `:predict`,
calling the real signatures, and answers errors with the real server's codes and messages:
NOT_FOUND "Servable not found for request: Latest(name)" / "Specific(name, version)" for an
unknown model or version, INVALID_ARGUMENT 'Serving signature name: "x" not found in signature
def' for an unknown signature; REST maps NOT_FOUND to 404 and INVALID_ARGUMENT to 400 with
{"error": message}. Where the real binary is on PATH, tests run against it too.
"""
import concurrent.futures
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc


class ServingError(Exception):
  def __init__(self, code: grpc.StatusCode, message: str):
    super().__init__(message)
    self.code = code


_HTTP_STATUS = {grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.INVALID_ARGUMENT: 400}


class TfServingDouble:
  """TEST DOUBLE of TF Serving (see the module docstring): real SavedModels, real protocol."""

  def __init__(self, model_name: str, base_path: str):
    self.model_name = model_name
    self.models = {int(v): tf.saved_model.load(os.path.join(base_path, v))
                   for v in os.listdir(base_path) if v.isdigit()}
    self.calls = 0
    self._grpc: Optional[grpc.Server] = None
    self._http: Optional[ThreadingHTTPServer] = None
    self.grpc_port = self.rest_port = 0

  # ---- The model server's logic, shared by both protocols. ----
  def predict(self, name: str, version: Optional[int], signature: str,
              inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    self.calls += 1
    if name != self.model_name or not self.models:
      raise ServingError(grpc.StatusCode.NOT_FOUND,
                         f"Servable not found for request: {_request(name, version)}")
    if version is None:
      version = max(self.models)
    if version not in self.models:
      raise ServingError(grpc.StatusCode.NOT_FOUND,
                         f"Servable not found for request: {_request(name, version)}")
    signatures = self.models[version].signatures
    signature = signature or "serving_default"
    if signature not in signatures:
      raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                         f'Serving signature name: "{signature}" not found in signature def')
    function = signatures[signature]
    declared = function.structured_input_signature[1]
    missing = sorted(set(declared) - set(inputs))
    if missing:
      raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                         f"input tensor alias not found in signature: {missing[0]}")
    try:
      outputs = function(**{n: tf.convert_to_tensor(inputs[n], s.dtype)
                            for n, s in declared.items()})
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
      raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
    return {n: v.numpy() for n, v in outputs.items()}

  # ---- gRPC. ----
  def _servicer(self):
    double = self

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
      def Predict(self, request, context):  # pylint: disable=invalid-name
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        try:
          outputs = double.predict(spec.name, version, spec.signature_name,
                                   {n: tf.make_ndarray(t) for n, t in request.inputs.items()})
        except ServingError as exc:
          context.abort(exc.code, str(exc))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = version or max(double.models)
        response.model_spec.signature_name = spec.signature_name or "serving_default"
        for name, value in outputs.items():
          response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response
    return Servicer()

  # ---- REST. ----
  def _rest_handler(self):
    double = self
    path = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")

    class Handler(BaseHTTPRequestHandler):
      def log_message(self, *args):  # quiet
        pass

      def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def do_POST(self):  # pylint: disable=invalid-name
        match = path.match(self.path)
        if not match:
          return self._send(404, {"error": "Malformed request: POST " + self.path})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        try:
          outputs = double.predict(match.group(1), int(match.group(2)) if match.group(2) else None,
                                   body.get("signature_name", ""),
                                   {n: np.array(v) for n, v in body.get("inputs", {}).items()})
        except ServingError as exc:
          return self._send(_HTTP_STATUS.get(exc.code, 500), {"error": str(exc)})
        values = {n: v.tolist() for n, v in outputs.items()}
        self._send(200, {"outputs": next(iter(values.values())) if len(values) == 1 else values})
    return Handler

  def start(self) -> "TfServingDouble":
    self._grpc = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self._servicer(),
                                                                        self._grpc)
    self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
    self._grpc.start()
    self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._rest_handler())
    self.rest_port = self._http.server_address[1]
    threading.Thread(target=self._http.serve_forever, daemon=True).start()
    return self

  def stop(self) -> None:
    """Kills both endpoints at once, as a crashed server would go."""
    if self._grpc:
      self._grpc.stop(grace=None)
      self._grpc = None
    if self._http:
      self._http.shutdown()
      self._http.server_close()
      self._http = None

  @property
  def grpc_target(self) -> str:
    return f"grpc://127.0.0.1:{self.grpc_port}"

  @property
  def rest_url(self) -> str:
    return f"http://127.0.0.1:{self.rest_port}"

  def __enter__(self) -> "TfServingDouble":
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()


def _request(name: str, version: Optional[int]) -> str:
  return f"Latest({name})" if version is None else f"Specific({name}, {version})"


def parse_target(url: str) -> Tuple[str, int]:
  host, port = url.split("://", 1)[1].rsplit(":", 1)
  return host, int(port)


def main() -> None:
  """Runs the double standalone (bench/serve_load.py): prints its ports, serves until killed."""
  import argparse  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description="TEST DOUBLE of tensorflow_model_server")
  parser.add_argument("--model-name", default="ctxrec")
  parser.add_argument("--model-base-path", required=True)
  args = parser.parse_args()
  double = TfServingDouble(args.model_name, args.model_base_path).start()
  print(f"grpc={double.grpc_port} rest={double.rest_port}", flush=True)
  while True:
    time.sleep(3600)


if __name__ == "__main__":
  import ctxrec  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  main()
