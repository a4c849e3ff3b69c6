"""`context_head` through TF Serving's REST `:predict` (columnar "inputs"), version pinned."""
import httpx
import numpy as np

from ctxrec.serving.head.head import OUTPUTS, ContextHead, HeadError, HeadOutput, Inputs
from ctxrec.transform import features as f


def predict_body(inputs: Inputs) -> dict:
  """The columnar request body TF Serving's REST API takes for a named signature."""
  return {"signature_name": f.SIGNATURE_CONTEXT_HEAD,
          "inputs": {name: value.tolist() for name, value in inputs.items()}}


class RestHead(ContextHead):
  """A TF Serving REST endpoint, e.g. http://host:8501; `timeout_s` bounds every call."""

  def __init__(self, base_url: str, model_name: str, model_version: str, timeout_s: float = 0.1):
    super().__init__(model_version)
    self.url = (f"{base_url.rstrip('/')}/v1/models/{model_name}/versions/{int(model_version)}"
                f":predict")
    self._client = httpx.Client(timeout=timeout_s)

  def embed(self, inputs: Inputs) -> HeadOutput:
    try:
      response = self._client.post(self.url, json=predict_body(inputs))
    except httpx.HTTPError as exc:
      raise HeadError(f"TF Serving {self.url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
      raise HeadError(f"TF Serving {self.url}: HTTP {response.status_code}: "
                      f"{_error_of(response)}")
    outputs = response.json().get("outputs")
    if not isinstance(outputs, dict):  # several outputs come by name, a single one bare
      outputs = {f.USER_EMBEDDING: outputs}
    if outputs.get(f.USER_EMBEDDING) is None:
      raise HeadError(f"TF Serving {self.url}: no {f.USER_EMBEDDING} in the answer")
    return HeadOutput.from_outputs({name: np.asarray(outputs[name]) for name in OUTPUTS
                                    if name in outputs})

  def close(self) -> None:
    self._client.close()


def _error_of(response: httpx.Response) -> str:
  try:
    return str(response.json().get("error", response.text))
  except ValueError:
    return response.text[:200]
