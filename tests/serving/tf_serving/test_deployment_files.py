"""TF Serving's config files parse as the server parses them, the generated models.config loads
what it should, and the Kubernetes manifests point at each other and are hardened."""
import glob
import itertools
import os
import re
import urllib.parse
from typing import Dict, Iterator, List, Set, Tuple

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


DEPLOYMENT_FILES = ("redis.yaml", "retrieval-service.yaml", "tf-serving.yaml")


def test_every_manifest_loads_with_kind_and_name():
  manifests = _manifests()
  assert set(manifests) == {"tf-serving.yaml", "retrieval-service.yaml", "redis.yaml",
                            "network-policy.yaml"}
  for name, documents in manifests.items():
    assert documents, f"{name} holds no document"
    for document in documents:
      assert document.get("apiVersion") and document.get("kind"), name
      assert document.get("metadata", {}).get("name"), name


def test_services_select_their_deployments():
  for name in DEPLOYMENT_FILES:
    documents = _manifests()[name]
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


# --- the hardening of the manifests -------------------------------------------------------------


RETRIEVAL = {"app.kubernetes.io/name": "ctxrec-retrieval"}
STATE_WRITER = {"ctxrec.io/state-writer": "true"}
REDIS_SECRET, TOKEN_SECRET = ("ctxrec-redis", "password"), ("ctxrec-retrieval-token", "token")
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def _pods() -> Dict[str, dict]:
  """Each Deployment's pod template by file: what every hardening rule applies to."""
  return {name: _find(_manifests()[name], "Deployment")["spec"]["template"]
          for name in DEPLOYMENT_FILES}


def _all_containers(pod_spec: dict) -> List[dict]:
  """Init containers too: they run with the same filesystem and could undo the hardening."""
  return pod_spec.get("initContainers", []) + pod_spec["containers"]


def _setting(pod_spec: dict, container: dict, key: str):
  """A container's security setting, falling back to the pod's as Kubernetes does."""
  own = container.get("securityContext", {})
  return own[key] if key in own else pod_spec.get("securityContext", {}).get(key)


def _env(container: dict) -> Dict[str, dict]:
  """A container's env entries by name, literal or from a Secret."""
  return {e["name"]: e for e in container.get("env", [])}


def _secret_ref(entry: dict) -> Tuple[str, str]:
  """(Secret name, key) an env entry is read from; fails if it carries a literal value."""
  assert "value" not in entry, f"{entry['name']} has a literal value"
  ref = entry["valueFrom"]["secretKeyRef"]
  return ref["name"], ref["key"]


def _policies() -> Dict[str, dict]:
  """NetworkPolicies by the app their podSelector selects."""
  policies = [d for d in _manifests()["network-policy.yaml"] if d["kind"] == "NetworkPolicy"]
  by_app = {p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: p
            for p in policies}
  assert len(by_app) == len(policies), "two policies select the same app"
  return by_app


def _peer(peer: dict) -> Tuple[Tuple[str, str], ...]:
  """A same-namespace pod peer as its labels; any wider peer fails."""
  assert set(peer) == {"podSelector"}, f"peer wider than pods of this namespace: {peer}"
  assert set(peer["podSelector"]) == {"matchLabels"}, peer
  return _labels(peer["podSelector"]["matchLabels"])


def _allowed(rules: List[dict], side: str) -> Set[tuple]:
  """(peer labels or None for anyone, protocol, port) each rule lets through."""
  allowed = set()
  for rule in rules:
    peers = [_peer(p) for p in rule.get(side, [])] or [None]
    ports = [(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]]
    assert ports, f"a rule open on every port: {rule}"
    allowed |= {(peer, *port) for peer, port in itertools.product(peers, ports)}
  return allowed


def _labels(labels: dict) -> Tuple[Tuple[str, str], ...]:
  """Labels as a hashable, order-free value, to compare peers as sets."""
  return tuple(sorted(labels.items()))


def _comments(name: str) -> str:
  """A manifest's comments as one text, continuation lines joined, for documented commands."""
  lines = [line.strip()[1:].strip() for line in
           _text(os.path.join("kubernetes", name)).splitlines() if line.strip().startswith("#")]
  return re.sub(r"\\\s+", "", " ".join(lines))


def _walk(node) -> Iterator[Tuple[str, object]]:
  """Every (key, value) pair of a parsed document, at any depth."""
  if isinstance(node, dict):
    for key, value in node.items():
      yield key, value
      yield from _walk(value)
  elif isinstance(node, list):
    for item in node:
      yield from _walk(item)


def test_every_pod_runs_as_a_numeric_non_root_user():
  """runAsNonRoot alone fails only at start on an image whose user is a name or root."""
  for name, pod in _pods().items():
    spec = pod["spec"]
    context = spec["securityContext"]
    assert context["runAsNonRoot"] is True, name
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
    for key in ("runAsUser", "runAsGroup"):
      assert isinstance(context[key], int) and context[key] > 0, (name, key)
    assert spec["automountServiceAccountToken"] is False, name
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")


def test_every_container_is_locked_down():
  """A container escapes the pod's settings with its own: each is checked as it will run."""
  for name, pod in _pods().items():
    spec = pod["spec"]
    for container in _all_containers(spec):
      where = (name, container["name"])
      context = container["securityContext"]
      assert context["allowPrivilegeEscalation"] is False, where
      assert context["readOnlyRootFilesystem"] is True, where
      assert context["capabilities"] == {"drop": ["ALL"]}, where
      assert not context.get("privileged"), where
      assert _setting(spec, container, "runAsNonRoot") is True, where
      assert _setting(spec, container, "runAsUser") not in (None, 0), where
      assert _setting(spec, container, "seccompProfile") == {"type": "RuntimeDefault"}, where


def test_the_users_fit_the_images():
  """redis:7's user is 999 (its entrypoint drops to it); ctxrec and TF Serving get their own."""
  users = {name: (pod["spec"]["securityContext"]["runAsUser"],
                  pod["spec"]["securityContext"]["runAsGroup"]) for name, pod in _pods().items()}
  assert users["redis.yaml"] == (999, 999)
  assert users["retrieval-service.yaml"] == (10001, 10001)
  assert len(set(users.values())) == 3, users


def test_only_declared_paths_are_writable():
  """With a read-only root, a write elsewhere fails at run time: each writer has its volume."""
  for name, pod in _pods().items():
    spec = pod["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in _all_containers(spec):
      for mount in container.get("volumeMounts", []):
        volume, where = volumes[mount["name"]], (name, mount["mountPath"])
        if mount.get("readOnly"):
          continue
        assert "emptyDir" in volume or "persistentVolumeClaim" in volume, where
        if "persistentVolumeClaim" in volume:
          context = spec["securityContext"]
          assert context["fsGroup"] == context["runAsGroup"], f"{where}: not the pod's group"


def test_redis_writes_only_its_data_volume():
  """Redis appends under --dir: that must be the claim, writable by its group."""
  spec = _pods()["redis.yaml"]["spec"]
  container = spec["containers"][0]
  (data,) = [m for m in container["volumeMounts"] if not m.get("readOnly")]
  assert data["mountPath"] == _flags(container["args"][1:])["dir"] == "/data"
  (volume,) = [v for v in spec["volumes"] if v["name"] == data["name"]]
  assert "persistentVolumeClaim" in volume and spec["securityContext"]["fsGroup"] == 999


def test_the_python_service_has_a_writable_home():
  """Keras writes ~/.keras at import: HOME and TMPDIR point at an emptyDir on /tmp."""
  spec = _pods()["retrieval-service.yaml"]["spec"]
  container = spec["containers"][0]
  env = _env(container)
  assert env["HOME"]["value"] == "/tmp" and env["TMPDIR"]["value"] == "/tmp"
  mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
  volumes = {v["name"]: v for v in spec["volumes"]}
  assert not mounts["/tmp"].get("readOnly")
  assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_every_probe_has_a_short_timeout():
  """Without timeoutSeconds a probe waits 1 s by default, silently; each is chosen here."""
  for name, pod in _pods().items():
    for container in _all_containers(pod["spec"]):
      assert "readinessProbe" in container and "livenessProbe" in container, name
      for kind in PROBES:
        if kind in container:
          probe, where = container[kind], (name, container["name"], kind)
          assert isinstance(probe.get("timeoutSeconds"), int), where
          assert 1 <= probe["timeoutSeconds"] <= 5, where
          assert probe["timeoutSeconds"] < probe["periodSeconds"], where


def test_the_probes_reach_only_open_paths():
  """The bearer token guards all but /healthz and /readyz, which the kubelet calls without it."""
  container = _pods()["retrieval-service.yaml"]["spec"]["containers"][0]
  paths = {container[kind]["httpGet"]["path"] for kind in PROBES if kind in container}
  assert paths and paths <= {"/healthz", "/readyz"}
  assert all("httpHeaders" not in container[kind]["httpGet"] for kind in PROBES
             if kind in container)


def test_redis_requires_the_password_of_its_secret():
  """The password reaches Redis only through the Secret, expanded by Kubernetes in args."""
  container = _container(_find(_manifests()["redis.yaml"], "Deployment"))
  args, env = container["args"], _env(container)
  assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
  assert _secret_ref(env["REDIS_PASSWORD"]) == REDIS_SECRET
  assert _secret_ref(env["REDISCLI_AUTH"]) == REDIS_SECRET
  command = " ".join(container["readinessProbe"]["exec"]["command"])
  assert "redis-cli ping" in command and "PONG" in command, \
      "redis-cli exits 0 on NOAUTH: the probe must compare the reply"
  assert "-a " not in command and "--pass" not in command


def test_every_expanded_variable_is_defined():
  """An undefined $(VAR) stays literal: Redis would take "$(REDIS_PASSWORD)" as its password."""
  for name, pod in _pods().items():
    for container in _all_containers(pod["spec"]):
      used = re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                        " ".join(container.get("command", []) + container.get("args", [])))
      assert set(used) <= set(_env(container)), (name, container["name"], used)


def test_the_retrieval_service_reads_the_redis_password_from_the_secret():
  """The store URI carries no password: it is printed in logs and errors, the env var is not."""
  container = _container(_find(_manifests()["retrieval-service.yaml"], "Deployment"))
  assert _secret_ref(_env(container)["CTXREC_REDIS_PASSWORD"]) == REDIS_SECRET
  store = urllib.parse.urlparse(_flags(container["command"][2:])["store"])
  assert (store.scheme, store.username, store.password) == ("redis", None, None)
  assert store.netloc == "ctxrec-redis:6379" and store.path == "/0"


def test_the_retrieval_service_requires_its_token_and_serves_no_docs():
  """Bound to 0.0.0.0, the service must authenticate callers and hide /docs and /openapi.json."""
  spec = _pods()["retrieval-service.yaml"]["spec"]
  container = spec["containers"][0]
  command = container["command"]
  flags = _flags(command[2:])
  assert flags["host"] == "0.0.0.0"
  assert not [a for a in command if a == "--docs" or a.startswith("--docs=")]
  volumes = {v["name"]: v for v in spec["volumes"]}
  (mount,) = [m for m in container["volumeMounts"] if "secret" in volumes[m["name"]]]
  secret = volumes[mount["name"]]["secret"]
  assert secret["secretName"] == TOKEN_SECRET[0] and mount["readOnly"] is True
  (item,) = secret["items"]
  assert item["key"] == TOKEN_SECRET[1]
  assert flags["auth-token-file"] == f"{mount['mountPath']}/{item['path']}"
  assert "subPath" not in mount, "a subPath mount never sees a rotated Secret"


def test_the_token_file_is_readable_only_by_the_service():
  """Mode 0440 with the pod's group as fsGroup: readable by uid 10001, not world-readable."""
  spec = _pods()["retrieval-service.yaml"]["spec"]
  (volume,) = [v for v in spec["volumes"] if "secret" in v]
  assert volume["secret"]["defaultMode"] == 0o440
  assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]


def test_every_secret_is_referenced_by_the_same_name_and_key():
  """A mistyped Secret name or key leaves a pod pending: all references name the two Secrets."""
  refs = set()
  for pod in _pods().values():
    for container in _all_containers(pod["spec"]):
      refs |= {_secret_ref(e) for e in container.get("env", []) if "valueFrom" in e}
    for volume in pod["spec"]["volumes"]:
      if "secret" in volume:
        refs |= {(volume["secret"]["secretName"], i["key"]) for i in volume["secret"]["items"]}
  assert refs == {REDIS_SECRET, TOKEN_SECRET}


def test_the_secrets_are_documented_not_shipped():
  """No Secret object, no literal value: each file says how to create the Secrets it uses."""
  for name, documents in _manifests().items():
    assert not [d for d in documents if d["kind"] == "Secret"], name
    for key, value in _walk(documents):
      if key == "env":
        for entry in value:
          if re.search("PASSWORD|TOKEN|AUTH|SECRET", entry["name"]):
            _secret_ref(entry)
      assert key not in ("password", "token", "stringData"), (name, key)
    text = _text(os.path.join("kubernetes", name))
    assert not re.search(r"[0-9a-fA-F]{32,}|[A-Za-z0-9+/]{40,}={0,2}", text), name
    assert not re.search(r"://[^/\s@]+@", text), f"{name}: credentials in a URI"
  for secret, key in (REDIS_SECRET, TOKEN_SECRET):
    command = f"kubectl create secret generic {secret} --from-literal={key}=\"$(openssl rand"
    assert command in _comments("retrieval-service.yaml"), secret
  assert "kubectl create secret generic ctxrec-redis --from-literal=password=" in \
      _comments("redis.yaml")


def test_prometheus_is_told_to_send_the_token():
  """/metrics answers 401 without the token: the scrape must be configured with it."""
  comments = _comments("retrieval-service.yaml")
  assert "Prometheus must scrape /metrics with that token" in comments


def test_every_pod_is_selected_by_a_policy_in_both_directions():
  """A pod no policy selects accepts and opens any connection."""
  policies = _policies()
  for name, pod in _pods().items():
    app = pod["metadata"]["labels"]["app.kubernetes.io/name"]
    assert set(policies[app]["spec"]["policyTypes"]) == {"Ingress", "Egress"}, name
    assert policies[app]["spec"]["podSelector"]["matchLabels"].items() <= \
        pod["metadata"]["labels"].items(), name


def test_redis_admits_only_the_retrieval_pods_and_the_state_writers():
  """The StatePublisher's pods write the states: they and the readers reach 6379, nobody else."""
  spec = _policies()["ctxrec-redis"]["spec"]
  peers = {_labels(RETRIEVAL), _labels(STATE_WRITER)}
  assert _allowed(spec["ingress"], "from") == {(p, "TCP", 6379) for p in peers}
  assert spec["egress"] == []
  assert _labels(RETRIEVAL) <= _labels(_pods()["retrieval-service.yaml"]["metadata"]["labels"])
  comments = _comments("network-policy.yaml")
  assert 'ctxrec.io/state-writer: "true"' in comments and "StatePublisher" in comments


def test_tf_serving_admits_only_the_retrieval_pods():
  """TF Serving has no authentication: only the retrieval pods, only its two ports."""
  spec = _policies()["ctxrec-tf-serving"]["spec"]
  container = _container(_find(_manifests()["tf-serving.yaml"], "Deployment"))
  ports = {p["containerPort"] for p in container["ports"]}
  assert ports == {8500, 8501}
  assert _allowed(spec["ingress"], "from") == {(_labels(RETRIEVAL), "TCP", p) for p in ports}
  assert spec["egress"] == []
  assert not any(_labels(STATE_WRITER) == peer for peer, _, _ in
                 _allowed(spec["ingress"], "from"))


def test_the_retrieval_pods_reach_only_dns_redis_and_tf_serving():
  """The exposed pod is the likeliest to be compromised: its egress is what it needs, no more."""
  spec = _policies()["ctxrec-retrieval"]["spec"]
  assert _allowed(spec["ingress"], "from") == {(None, "TCP", 8080)}
  redis = _labels({"app.kubernetes.io/name": "ctxrec-redis"})
  tf_serving = _labels({"app.kubernetes.io/name": "ctxrec-tf-serving"})
  assert _allowed(spec["egress"], "to") == {
      (redis, "TCP", 6379), (tf_serving, "TCP", 8500), (tf_serving, "TCP", 8501),
      (None, "UDP", 53), (None, "TCP", 53)}
