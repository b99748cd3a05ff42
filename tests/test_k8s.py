"""The Kubernetes manifests: they render, validate, pass checkov, and agree with the app and image.

Everything is checked on kustomize's output (what `kubectl apply -k` would send), for the base and
both overlays. kubernetes-validate checks the schemas and checkov the security context, resources
and probes; the tests here check what they cannot: consistency with the service, against the code
(Settings, the Dockerfile, the project's rules file) and a running service, not by eye.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import promql_parser
import pytest
import yaml

from lucidserve.settings import Settings
from tests.support.linters import run_checkov
from tests.support.manifests import (
    KUSTOMIZATIONS,
    Rendered,
    kustomize_command,
    render_text,
    selects,
)
from tests.support.processes import BIN, REPO, Service

ALL = tuple(KUSTOMIZATIONS)
OVERLAYS = ("dev", "prod")
DOCKERFILE = REPO / "Dockerfile"
RULES_FILE = REPO / "deploy" / "prometheus" / "rules.yml"
ADAPTER_VALUES = REPO / "deploy" / "k8s" / "prometheus-adapter" / "values.yaml"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Oldest Kubernetes the manifests target (preStop `sleep`, matchLabelKeys in spread constraints),
# and kubernetes-validate's newest.
KUBERNETES_VERSIONS = ("1.30.0", None)
# OpenTelemetry SDK environment variables (the specification's list) the manifests may set.
OTEL_VARIABLES = {
    "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_LOG_LEVEL",
    "OTEL_PROPAGATORS", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_EXPORT_TIMEOUT",
}  # fmt: skip
# Variables read by the libraries under the app (BLAS/OpenMP thread pools, the interpreter).
LIBRARY_VARIABLES = {
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
}  # fmt: skip


@pytest.fixture(scope="module")
def rendered() -> dict[str, Rendered]:
    if kustomize_command() is None:
        pytest.skip("neither kubectl nor kustomize is installed")
    return {name: Rendered.of(name, render_text(path)) for name, path in KUSTOMIZATIONS.items()}


@pytest.fixture(scope="module")
def rendered_files(rendered: dict[str, Rendered], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    for name in OVERLAYS:
        (out / f"{name}.yaml").write_text(rendered[name].text)
    return out


def settings_names() -> set[str]:
    return {f"LUCIDSERVE_{name.upper()}" for name in Settings.model_fields}


def dockerfile_user() -> tuple[int, int]:
    match = re.search(r"^USER (\d+):(\d+)$", DOCKERFILE.read_text(), re.M)
    assert match, "the Dockerfile sets no numeric USER uid:gid"
    return int(match[1]), int(match[2])


def graceful_timeout(r: Rendered) -> float:
    value = r.settings_env().get("LUCIDSERVE_GRACEFUL_TIMEOUT")
    return float(value) if value else float(Settings.model_fields["graceful_timeout"].default)


# --- rendering and schema validation ------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_kustomization_renders_every_object(rendered: dict[str, Rendered], name: str) -> None:
    kinds = {doc["kind"] for doc in rendered[name].docs}
    expected = {
        "Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service",
        "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor",
    }  # fmt: skip
    assert expected <= kinds
    if name != "dev":
        assert "HorizontalPodAutoscaler" in kinds


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS, ids=lambda v: v or "latest")
@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_passes_strict_schema_validation(
    rendered_files: Path, name: str, version: str | None
) -> None:
    import subprocess

    argv = [str(BIN / "kubernetes-validate"), "--strict", "--quiet"]
    argv += ["--kubernetes-version", version] if version else []
    result = subprocess.run(
        [*argv, str(rendered_files / f"{name}.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (result.stdout + result.stderr).splitlines():
        # Only the Prometheus Operator's custom resources are unknown to it (checked below).
        assert any(f"kind {kind} " in line for kind in CRD_KINDS), line


def test_checkov_passes_every_overlay(rendered_files: Path) -> None:
    result = run_checkov("kubernetes", rendered_files)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_skipped_checkov_check_is_justified_on_its_resource(
    rendered: dict[str, Rendered], name: str
) -> None:
    for doc in rendered[name].docs:
        for key, value in (doc["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert re.fullmatch(r"CKV2?_K8S_\d+", check), value
                assert len(reason.strip()) >= 20, f"{doc['kind']}: skip {check} needs a reason"


@pytest.mark.parametrize("name", ALL)
def test_servicemonitor_has_the_operators_required_structure(
    rendered: dict[str, Rendered], name: str
) -> None:
    monitor = rendered[name].one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"]
    assert spec["endpoints"]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {
            "port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
            "relabelings", "metricRelabelings", "params", "enableHttp2", "followRedirects",
        }  # fmt: skip
        assert isinstance(endpoint["port"], str)
        assert endpoint["path"].startswith("/")
        interval, timeout = (_seconds(endpoint[key]) for key in ("interval", "scrapeTimeout"))
        assert 0 < timeout <= interval


@pytest.mark.parametrize("name", ALL)
def test_monitoring_objects_carry_the_label_kube_prometheus_stack_selects(
    rendered: dict[str, Rendered], name: str
) -> None:
    monitor = rendered[name].one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rule = rendered[name].maybe("PrometheusRule")
    if rule is not None:
        assert rule["metadata"]["labels"]["release"] == monitor["metadata"]["labels"]["release"]


def test_rules_select_the_scrape_job_the_servicemonitor_creates(
    rendered: dict[str, Rendered],
) -> None:
    # The Prometheus Operator names the job after the Service; the rules match it by regex.
    service = rendered["base"].one("Service")["metadata"]["name"]
    matchers = set(re.findall(r'job=~"([^"]+)"', RULES_FILE.read_text()))
    assert matchers, "the rules select no scrape job"
    for pattern in matchers:
        assert re.fullmatch(pattern, service), pattern


# --- consistency with the app and the image -----------------------------------------------------


def test_probe_and_scrape_paths_answer_on_the_real_service(
    rendered: dict[str, Rendered], service: Service
) -> None:
    container = rendered["base"].container
    paths = {
        container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert paths == {"/healthz", "/readyz"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for path in paths:
        assert service.client.get(path).status_code == 200, path
    for endpoint in rendered["base"].one("ServiceMonitor")["spec"]["endpoints"]:
        assert endpoint["port"] == "metrics"
        url = f"http://127.0.0.1:{service.metrics_port}{endpoint['path']}"
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200
        assert "http_server_request_duration_seconds" in response.text
        assert service.client.get(endpoint["path"]).status_code == 404  # not on the API port


@pytest.mark.parametrize("name", ALL)
def test_ports_agree_by_name(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    container_ports = {p["name"]: p["containerPort"] for p in r.container["ports"]}
    assert container_ports == {
        "http": int(Settings.model_fields["port"].default),
        "metrics": int(Settings.model_fields["metrics_port"].default),
    }
    env = {**r.settings_env(), **r.literal_env()}
    assert "LUCIDSERVE_PORT" not in env
    assert "LUCIDSERVE_METRICS_PORT" not in env
    service_ports = {p["name"]: p for p in r.one("Service")["spec"]["ports"]}
    for port in service_ports.values():
        assert port["targetPort"] in container_ports
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert r.container[probe]["httpGet"]["port"] in container_ports
    for endpoint in r.one("ServiceMonitor")["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports
    policy = r.one("NetworkPolicy", "lucidserve")
    ingress_ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
    assert set(ingress_ports) == set(container_ports)


@pytest.mark.parametrize("name", ALL)
def test_only_the_monitoring_namespaces_prometheus_reaches_the_metrics_port(
    rendered: dict[str, Rendered], name: str
) -> None:
    ingress = rendered[name].one("NetworkPolicy", "lucidserve")["spec"]["ingress"]
    to_metrics = [r for r in ingress if any(p["port"] == "metrics" for p in r["ports"])]
    assert len(to_metrics) == 1
    rule = to_metrics[0]
    assert [p["port"] for p in rule["ports"]] == ["metrics"]  # that rule opens nothing else
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]


@pytest.mark.parametrize("name", ALL)
def test_selectors_select_the_servers_pods(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    pods = r.pod_labels
    assert selects(r.deployment["spec"]["selector"]["matchLabels"], pods)
    assert selects(r.one("Service")["spec"]["selector"], pods)
    assert selects(r.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pods)
    assert selects(r.one("NetworkPolicy", "lucidserve")["spec"]["podSelector"]["matchLabels"], pods)
    for constraint in r.pod["topologySpreadConstraints"]:
        assert selects(constraint["labelSelector"]["matchLabels"], pods)
    service_labels = r.one("Service")["metadata"]["labels"]
    assert selects(r.one("ServiceMonitor")["spec"]["selector"]["matchLabels"], service_labels)
    hpa = r.maybe("HorizontalPodAutoscaler")
    if hpa is not None:
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", r.deployment["metadata"]["name"])
    assert r.pod["serviceAccountName"] == r.one("ServiceAccount")["metadata"]["name"]


@pytest.mark.parametrize("name", ALL)
def test_pod_runs_as_the_images_user(rendered: dict[str, Rendered], name: str) -> None:
    uid, gid = dockerfile_user()
    assert re.search(rf"useradd [^\n]*--uid {uid} --gid {gid}", DOCKERFILE.read_text())
    pod, container = rendered[name].pod["securityContext"], rendered[name].container
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (uid, gid, gid)
    ctx = container["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"]) == (uid, gid)


@pytest.mark.parametrize("name", ALL)
def test_service_links_are_off_so_no_variable_collides_with_a_setting(
    rendered: dict[str, Rendered], name: str
) -> None:
    # A Service named lucidserve would otherwise inject LUCIDSERVE_PORT=tcp://<ip>:8000.
    assert rendered[name].pod["enableServiceLinks"] is False


@pytest.mark.parametrize("name", ALL)
def test_every_environment_variable_is_a_real_setting(
    rendered: dict[str, Rendered], name: str
) -> None:
    r = rendered[name]
    env = r.container.get("env", [])
    values = " ".join(str(e.get("value", "")) for e in env)
    for variable in [*r.settings_env(), *(e["name"] for e in env)]:
        if variable.startswith("LUCIDSERVE_"):
            assert variable in settings_names(), f"{variable} is not a field of Settings"
        elif variable.startswith("OTEL_"):
            assert variable in OTEL_VARIABLES, f"{variable} is not an OpenTelemetry variable"
        elif variable not in LIBRARY_VARIABLES:
            # A Downward API helper is fine when another variable expands it.
            assert f"$({variable})" in values, f"{variable} is neither a setting nor used"


def test_the_images_own_settings_are_real_settings() -> None:
    names = re.findall(r"\b(LUCIDSERVE_[A-Z_]+)=", DOCKERFILE.read_text())
    assert names
    assert set(names) <= settings_names()


@pytest.mark.parametrize("name", ALL)
def test_configured_values_are_valid_settings(
    rendered: dict[str, Rendered], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = rendered[name]
    for key, value in {**r.settings_env(), **r.literal_env()}.items():
        if key.startswith("LUCIDSERVE_"):
            monkeypatch.setenv(key, value)
    Settings()  # raises on a value the service would refuse at start


@pytest.mark.parametrize("name", ALL)
def test_worker_count_follows_the_cpu_limit(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    source = r.env_entry("LUCIDSERVE_WORKERS")["valueFrom"]["resourceFieldRef"]
    assert source["resource"] == "limits.cpu"
    assert source["containerName"] == r.container["name"]
    assert str(source["divisor"]) == "1"  # whole CPUs; the kubelet rounds a fraction up
    assert r.container["resources"]["limits"]["cpu"]
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert r.env_entry(variable)["value"] == "1"


@pytest.mark.parametrize("name", ALL)
def test_writable_paths_are_sized_emptydirs(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    volumes = {v["name"]: v["emptyDir"] for v in r.pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in r.container["volumeMounts"]}
    env = r.literal_env()
    for variable in ("LUCIDSERVE_MULTIPROC_DIR", "LUCIDSERVE_WORKER_TMP_DIR"):
        volume = mounts[env[variable]]
        assert volume["medium"] == "Memory"
        # The image's defaults point at the same paths, so a plain `docker run` behaves alike.
        assert f"{variable}={env[variable]}" in DOCKERFILE.read_text()
    assert "/tmp" in mounts
    assert all(volume.get("sizeLimit") for volume in volumes.values())
    memory_volumes = sum(
        _bytes(v["sizeLimit"]) for v in volumes.values() if v.get("medium") == "Memory"
    )
    assert memory_volumes < _bytes(r.container["resources"]["limits"]["memory"]) / 4


@pytest.mark.parametrize("name", ALL)
def test_termination_grace_outlasts_prestop_and_the_graceful_drain(
    rendered: dict[str, Rendered], name: str
) -> None:
    r = rendered[name]
    pre_stop = r.container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop > 0
    assert r.pod["terminationGracePeriodSeconds"] > pre_stop + graceful_timeout(r)


@pytest.mark.parametrize("name", ALL)
def test_probes_give_the_model_time_to_load_and_then_watch_closely(
    rendered: dict[str, Rendered], name: str
) -> None:
    c = rendered[name].container
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["timeoutSeconds"] < c[probe]["periodSeconds"]
    # Readiness reacts before liveness would restart anything.
    readiness, liveness = c["readinessProbe"], c["livenessProbe"]
    assert (
        readiness["periodSeconds"] * readiness["failureThreshold"]
        < liveness["periodSeconds"] * liveness["failureThreshold"]
    )


def test_autoscaler_scales_on_cpu_and_on_the_request_rate_the_adapter_serves(
    rendered: dict[str, Rendered],
) -> None:
    hpa = rendered["base"].one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    served = {
        rule["name"]["as"]: rule
        for rule in yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    }
    rule = served[metrics["Pods"]["pods"]["metric"]["name"]]
    assert rule["resources"]["overrides"]["pod"]["resource"] == "pod"
    series = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["seriesQuery"])
    assert series
    assert series[0] == "http_server_request_duration_seconds_count"
    query = rule["metricsQuery"].replace("<<.Series>>", series[0])
    query = query.replace("<<.LabelMatchers>>", 'namespace="lucidserve"').replace(
        "<<.GroupBy>>", "pod"
    )
    promql_parser.parse(query)


def test_adapter_excludes_the_probe_and_scrape_routes_from_the_request_rate(
    rendered: dict[str, Rendered],
) -> None:
    rule = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"][0]
    excluded = re.search(r'http_route!~"([^"]+)"', rule["metricsQuery"])
    assert excluded
    container = rendered["base"].container
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert re.fullmatch(excluded[1], container[probe]["httpGet"]["path"])
    assert re.fullmatch(excluded[1], "/metrics")


@pytest.mark.parametrize("name", ALL)
def test_network_policy_denies_by_default_and_allows_dns_and_otlp(
    rendered: dict[str, Rendered], name: str
) -> None:
    r = rendered[name]
    deny = r.one("NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert not deny.get("ingress")
    assert not deny.get("egress")
    egress = r.one("NetworkPolicy", "lucidserve")["spec"]["egress"]
    allowed = {(p["port"], p["protocol"]) for rule in egress for p in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP")} <= allowed
    endpoint = urlsplit(r.settings_env()["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.port, "TCP") in allowed
    collector_namespace = (endpoint.hostname or "").split(".")[1]
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in egress
        if any(p["port"] == endpoint.port for p in rule["ports"])
        for peer in rule["to"]
    }
    assert namespaces == {collector_namespace}


# --- the overlays ---------------------------------------------------------------------------------


def test_prod_pins_the_image_by_digest_and_runs_more_replicas(
    rendered: dict[str, Rendered],
) -> None:
    prod, base = rendered["prod"], rendered["base"]
    assert re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", prod.container["image"])
    prod_hpa, base_hpa = (r.one("HorizontalPodAutoscaler")["spec"] for r in (prod, base))
    assert prod_hpa["minReplicas"] > base_hpa["minReplicas"] >= 2
    assert "replicas" not in prod.deployment["spec"]  # the autoscaler owns the count


def test_prod_reads_the_input_hash_key_from_an_optional_secret(
    rendered: dict[str, Rendered],
) -> None:
    env = {e["name"]: e for e in rendered["prod"].container["env"]}
    reference = env["LUCIDSERVE_INPUT_HASH_KEY"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "lucidserve-input-hash", "key": "key", "optional": True}
    assert "LUCIDSERVE_INPUT_HASH_KEY" not in rendered["prod"].settings_env()
    overlay = (REPO / "deploy" / "k8s" / "overlays" / "prod" / "kustomization.yaml").read_text()
    assert "create secret generic lucidserve-input-hash" in overlay


@pytest.mark.parametrize("name", ALL)
def test_everything_lands_in_one_namespace(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    namespace = r.one("Namespace")["metadata"]["name"]
    for doc in r.docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["kind"]


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert match, duration
    return int(match[1]) * {"ms": 0.001, "s": 1, "m": 60}[match[2]]


def _bytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", quantity)
    assert match, quantity
    return int(match[1]) * {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[match[2]]
