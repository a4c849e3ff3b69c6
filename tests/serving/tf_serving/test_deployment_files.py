"""TF Serving's config files parse as the server parses them, the generated models.config loads
what it should, and the Kubernetes manifests point at each other."""
import glob
import os
from typing import Dict, List

import pytest
import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf import wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

from ctxrec.serving.tf_serving import model_config as mc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
FOLDER = os.path.join(ROOT, "serving", "tf_serving")
MANIFESTS = os.path.join(FOLDER, "kubernetes")


def _text(name: str) -> str:
  with open(os.path.join(FOLDER, name)) as handle:
    return handle.read()


def _serving_protos() -> Dict[str, type]:
  """BatchingParameters and MonitoringConfig as in TF Serving 2.16.1's .proto files.

  tensorflow-serving-api ships neither (only model_server_config_pb2 among the configs), so the
  two messages are declared here field for field (session_bundle_config.proto,
  monitoring_config.proto at tag 2.16.1)."""
  f = descriptor_pb2.FieldDescriptorProto
  proto = descriptor_pb2.FileDescriptorProto(
      name="ctxrec_test/tf_serving_configs.proto", package="tensorflow.serving",
      syntax="proto3", dependency=["google/protobuf/wrappers.proto"])

  def message(name: str, fields: List[tuple]) -> None:
    added = proto.message_type.add(name=name)
    for field_name, number, kind, type_name, label in fields:
      added.field.add(name=field_name, number=number, type=kind, label=label,
                      **({"type_name": type_name} if type_name else {}))

  one, many = f.LABEL_OPTIONAL, f.LABEL_REPEATED
  int64, string = ".google.protobuf.Int64Value", ".google.protobuf.StringValue"
  message("BatchingParameters", [
      ("max_batch_size", 1, f.TYPE_MESSAGE, int64, one),
      ("batch_timeout_micros", 2, f.TYPE_MESSAGE, int64, one),
      ("max_enqueued_batches", 3, f.TYPE_MESSAGE, int64, one),
      ("num_batch_threads", 4, f.TYPE_MESSAGE, int64, one),
      ("thread_pool_name", 5, f.TYPE_MESSAGE, string, one),
      ("allowed_batch_sizes", 6, f.TYPE_INT64, None, many),
      ("pad_variable_length_inputs", 7, f.TYPE_BOOL, None, one),
      ("enable_large_batch_splitting", 8, f.TYPE_MESSAGE, ".google.protobuf.BoolValue", one),
      ("max_execution_batch_size", 9, f.TYPE_MESSAGE, int64, one)])
  message("PrometheusConfig", [("enable", 1, f.TYPE_BOOL, None, one),
                               ("path", 2, f.TYPE_STRING, None, one)])
  message("MonitoringConfig", [("prometheus_config", 1, f.TYPE_MESSAGE,
                                ".tensorflow.serving.PrometheusConfig", one)])
  pool = descriptor_pool.DescriptorPool()
  wrappers = descriptor_pb2.FileDescriptorProto()
  wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
  pool.Add(wrappers)
  pool.Add(proto)
  factory = message_factory.MessageFactory(pool)
  return {name: factory.GetPrototype(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
          for name in ("BatchingParameters", "MonitoringConfig")}


PROTOS = _serving_protos()


def _parse(text: str, cls: type):
  return text_format.Parse(text, cls())


def _manifests() -> Dict[str, List[dict]]:
  documents = {}
  for path in sorted(glob.glob(os.path.join(MANIFESTS, "*.yaml"))):
    with open(path) as handle:
      documents[os.path.basename(path)] = [d for d in yaml.safe_load_all(handle) if d is not None]
  return documents


def _find(documents: List[dict], kind: str) -> dict:
  matches = [d for d in documents if d["kind"] == kind]
  assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
  return matches[0]


def _container(deployment: dict) -> dict:
  return deployment["spec"]["template"]["spec"]["containers"][0]


def _flags(arguments: List[str]) -> Dict[str, str]:
  """--name value and --name=value pairs (a bare --name maps to "")."""
  flags, key = {}, None
  for argument in arguments:
    if argument.startswith("--"):
      key, _, value = argument[2:].partition("=")
      flags[key] = value
    elif key is not None:
      flags[key], key = argument, None
  return flags


def _pushed(tmp_path, versions, extra=()) -> str:
  model_dir = tmp_path / "serving" / "ctxrec"
  for version in versions:
    (model_dir / str(version)).mkdir(parents=True)
    (model_dir / str(version) / mc.SAVED_MODEL_FILE).write_bytes(b"")
  for name in extra:
    (model_dir / name).mkdir(parents=True)
  return str(model_dir)


# --- the static text protos ---------------------------------------------------------------------


@pytest.mark.parametrize("name,cls", [
    ("models.config", model_server_config_pb2.ModelServerConfig),
    ("batching_parameters.txt", PROTOS["BatchingParameters"]),
    ("monitoring.config", PROTOS["MonitoringConfig"])])
def test_every_config_file_parses_as_its_proto(name, cls):
  assert _parse(_text(name), cls).ListFields(), f"{name} parsed to an empty {cls.__name__}"


def test_a_typo_fails_the_parse():
  with pytest.raises(text_format.ParseError):
    _parse(_text("batching_parameters.txt").replace("max_batch_size {", "max_batch_sise {"),
           PROTOS["BatchingParameters"])
  with pytest.raises(text_format.ParseError):  # a wrapped Int64Value is a message, not a scalar
    _parse("max_batch_size: 64", PROTOS["BatchingParameters"])


def test_models_config_loads_specific_versions_of_ctxrec():
  config = _parse(_text("models.config"), model_server_config_pb2.ModelServerConfig)
  (model,) = config.model_config_list.config
  assert (model.name, model.base_path, model.model_platform) == ("ctxrec", "/models/ctxrec",
                                                                  "tensorflow")
  assert model.model_version_policy.WhichOneof("policy_choice") == "specific"
  assert len(model.model_version_policy.specific.versions) == 2


def test_batching_fits_a_small_cpu_head():
  batching = _parse(_text("batching_parameters.txt"), PROTOS["BatchingParameters"])
  assert batching.max_batch_size.value == 64
  assert batching.num_batch_threads.value >= 1
  assert not batching.allowed_batch_sizes or \
      batching.allowed_batch_sizes[-1] == batching.max_batch_size.value


def test_monitoring_enables_prometheus():
  monitoring = _parse(_text("monitoring.config"), PROTOS["MonitoringConfig"])
  assert monitoring.prometheus_config.enable
  assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


# --- the generator ------------------------------------------------------------------------------


def test_model_server_config_round_trips():
  text = mc.model_server_config([1795864053, 1795950453], labels={"stable": 1795864053,
                                                                  "canary": 1795950453})
  (model,) = _parse(text, model_server_config_pb2.ModelServerConfig).model_config_list.config
  assert (model.name, model.base_path) == ("ctxrec", "/models/ctxrec")
  assert list(model.model_version_policy.specific.versions) == [1795864053, 1795950453]
  assert dict(model.version_labels) == {"stable": 1795864053, "canary": 1795950453}


def test_model_server_config_without_labels_has_none():
  text = mc.model_server_config([7], base_path="/srv/m", name="other")
  (model,) = _parse(text, model_server_config_pb2.ModelServerConfig).model_config_list.config
  assert (model.name, model.base_path, dict(model.version_labels)) == ("other", "/srv/m", {})


@pytest.mark.parametrize("versions,message", [
    ([], "empty"), ([3, 5, 3], "more than once"), ([0], "not positive"), ([-2], "not positive"),
    (["7"], "not positive"), ([True], "not positive")])
def test_model_server_config_refuses_bad_versions(versions, message):
  with pytest.raises(ValueError, match=message):
    mc.model_server_config(versions)


def test_model_server_config_refuses_a_label_on_an_unloaded_version():
  with pytest.raises(ValueError, match="not among the loaded versions"):
    mc.model_server_config([1, 2], labels={"canary": 3})


def test_versions_in_finds_only_pushed_integer_folders(tmp_path):
  model_dir = _pushed(tmp_path, [10, 2, 300], extra=["11", "tmp-12", "0"])
  (tmp_path / "serving" / "ctxrec" / "13").write_text("a file, not a folder")
  assert mc.versions_in(model_dir) == [2, 10, 300]
  assert mc.versions_in(str(tmp_path / "missing")) == []


def test_main_writes_the_newest_versions(tmp_path, capsys):
  model_dir = _pushed(tmp_path, [10, 2, 300])
  assert mc.main(["--serving-dir", model_dir]) == 0
  (model,) = _parse(capsys.readouterr().out,
                    model_server_config_pb2.ModelServerConfig).model_config_list.config
  assert list(model.model_version_policy.specific.versions) == [10, 300]
  assert mc.main(["--serving-dir", model_dir, "--keep", "1", "--base-path", "/m/ctxrec"]) == 0
  (model,) = _parse(capsys.readouterr().out,
                    model_server_config_pb2.ModelServerConfig).model_config_list.config
  assert (list(model.model_version_policy.specific.versions), model.base_path) == ([300],
                                                                                 "/m/ctxrec")


def test_main_names_the_folder_when_nothing_is_pushed(tmp_path, capsys):
  empty = str(tmp_path / "serving" / "ctxrec")
  assert mc.main(["--serving-dir", empty]) == 1
  captured = capsys.readouterr()
  assert captured.out == ""
  assert empty in captured.err and "ctxrec run" in captured.err
  assert mc.main(["--serving-dir", empty, "--keep", "0"]) == 2


# --- the Kubernetes manifests -------------------------------------------------------------------


def test_every_manifest_loads_with_kind_and_name():
  manifests = _manifests()
  assert set(manifests) == {"tf-serving.yaml", "retrieval-service.yaml", "redis.yaml"}
  for name, documents in manifests.items():
    assert documents, f"{name} holds no document"
    for document in documents:
      assert document.get("apiVersion") and document.get("kind"), name
      assert document.get("metadata", {}).get("name"), name


def test_services_select_their_deployments():
  for documents in _manifests().values():
    deployment, service = _find(documents, "Deployment"), _find(documents, "Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["metadata"]["name"] == deployment["metadata"]["name"]


def test_tf_serving_args_name_the_files_here():
  container = _container(_find(_manifests()["tf-serving.yaml"], "Deployment"))
  flags = _flags(container["args"])
  assert container["image"] == "tensorflow/serving:2.16.1"
  assert "enable_batching" in flags and flags["model_config_file_poll_wait_seconds"] == "60"
  for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
    assert flags[flag].startswith("/config/"), flag
    assert os.path.isfile(os.path.join(FOLDER, os.path.basename(flags[flag]))), flags[flag]
  ports = {p["name"]: p["containerPort"] for p in container["ports"]}
  assert ports == {"grpc": int(flags["port"]), "http": int(flags["rest_api_port"])}
  assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/ctxrec",
                                                    "port": ports["http"]}


def test_tf_serving_mounts_the_configmap_and_the_models():
  spec = _find(_manifests()["tf-serving.yaml"], "Deployment")["spec"]["template"]["spec"]
  volumes = {v["name"]: v for v in spec["volumes"]}
  mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
  assert volumes[mounts["/config"]]["configMap"]["name"] == "ctxrec-tf-serving-config"
  assert volumes[mounts["/models"]]["persistentVolumeClaim"]["claimName"] == "ctxrec-models"
  assert "kubectl create configmap ctxrec-tf-serving-config --from-file=serving/tf_serving/" \
      in _text(os.path.join("kubernetes", "tf-serving.yaml"))


def _service_port(manifest: str, port_name: str) -> tuple:
  service = _find(_manifests()[manifest], "Service")
  ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
  return service["metadata"]["name"], ports[port_name]


def test_the_retrieval_service_reaches_the_other_services():
  deployment = _find(_manifests()["retrieval-service.yaml"], "Deployment")
  container = _container(deployment)
  command = container["command"]
  assert command[:2] == ["ctxrec", "serve"]
  flags = _flags(command[2:])
  tf_serving, grpc_port = _service_port("tf-serving.yaml", "grpc")
  redis_name, redis_port = _service_port("redis.yaml", "redis")
  assert flags["tf-serving"] == f"grpc://{tf_serving}:{grpc_port}"
  assert flags["store"].startswith(f"redis://{redis_name}:{redis_port}/")
  assert (flags["serving-dir"], flags["host"]) == ("/models", "0.0.0.0")
  assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8080}
  assert flags["port"] == "8080" and _service_port("retrieval-service.yaml", "http")[1] == 8080
  assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
  assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
  assert {"name": "TF_USE_LEGACY_KERAS", "value": "1"} in container["env"]
  assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] == \
      "/metrics"


def test_the_retrieval_service_reads_the_same_models_volume():
  specs = {name: _find(_manifests()[name], "Deployment")["spec"]["template"]["spec"]
           for name in ("tf-serving.yaml", "retrieval-service.yaml")}
  for name, spec in specs.items():
    (models,) = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert models["persistentVolumeClaim"]["claimName"] == "ctxrec-models", name
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == models["name"]]
    assert (mount["mountPath"], mount["readOnly"]) == ("/models", True), name
  assert _find(_manifests()["tf-serving.yaml"], "PersistentVolumeClaim")["metadata"]["name"] == \
      "ctxrec-models"


def test_redis_persists_its_states():
  documents = _manifests()["redis.yaml"]
  container = _container(_find(documents, "Deployment"))
  assert container["image"] == "redis:7"
  assert _flags(container["args"][1:])["appendonly"] == "yes"
  claim = _find(documents, "PersistentVolumeClaim")["metadata"]["name"]
  spec = _find(documents, "Deployment")["spec"]["template"]["spec"]
  assert [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]] == [claim]
