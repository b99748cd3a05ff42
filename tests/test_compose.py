"""deploy/compose: the local stack's files agree with each other and with the project.

The suite starts no containers (it needs no Docker engine): Prometheus's configuration is checked by
promtool on the layout the containers see; the rest is parsed and cross-checked (service names,
ports, mount paths, data source uids, the exemplar label the service writes).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from lucidserve.settings import Settings
from tests.support.processes import REPO
from tests.support.promql import DASHBOARDS, load_dashboard, load_rules, rules

COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PROVISIONING = REPO / "grafana" / "provisioning"
DATASOURCES = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
PROVIDERS = yaml.safe_load((PROVISIONING / "dashboards" / "lucidserve.yml").read_text())
COLLECTOR = yaml.safe_load((COMPOSE_DIR / "otel-collector.yml").read_text())
TEMPO = yaml.safe_load((COMPOSE_DIR / "tempo.yml").read_text())
PROMETHEUS = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
SERVICE_PORT = 8000  # the service's HTTP port (ARCHITECTURE.md; EXPOSE in the Dockerfile)
METRICS_PORT = 9100  # its metrics port (LUCIDSERVE_METRICS_PORT's default; EXPOSE too)


def _mounts(service: str) -> dict[str, Path]:
    """Container path -> host path (resolved from the compose file's directory)."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts[target] = (COMPOSE_DIR / source).resolve()
    return mounts


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"//{url}")
    assert parts.hostname, url
    assert parts.port, url
    return parts.hostname, parts.port


def _datasource(kind: str) -> dict[str, Any]:
    (found,) = [ds for ds in DATASOURCES["datasources"] if ds["type"] == kind]
    return dict(found)


def test_the_service_is_built_from_the_repositorys_dockerfile() -> None:
    build = SERVICES["lucidserve"]["build"]
    context = (COMPOSE_DIR / build["context"]).resolve()
    assert context == REPO
    assert (context / build.get("dockerfile", "Dockerfile")).is_file()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned_and_name_no_registry_host(name: str) -> None:
    image = SERVICES[name]["image"]
    repository, _, tag = image.rpartition(":")
    assert repository, image
    assert tag not in {"", "latest"}, image
    if "build" not in SERVICES[name] and image != SERVICES["lucidserve"]["image"]:
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{image}: not an exact version"
    first = repository.split("/")[0]
    assert "." not in first, f"{image}: names a registry host"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_mounted_file_exists(name: str) -> None:
    for target, source in _mounts(name).items():
        assert source.exists(), f"{name}: {source} (for {target}) is missing"


def test_the_service_runs_read_only_with_the_writable_paths_kubernetes_gives_it() -> None:
    deployment = yaml.safe_load((REPO / "deploy/k8s/base/deployment.yaml").read_text())
    containers = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "lucidserve"]
    writable = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert SERVICES["lucidserve"]["read_only"] is True
    assert set(SERVICES["lucidserve"]["tmpfs"]) == writable


def test_published_ports_stay_on_loopback() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is missing")
def test_prometheus_config_passes_promtool_on_the_containers_layout(tmp_path: Path) -> None:
    """Rebuild the container's view from the compose mounts, so rule_files resolve as there."""
    mounts = _mounts("prometheus")
    for target, source in mounts.items():
        copy = tmp_path / target.lstrip("/")
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, copy)
    config_flag = next(
        arg for arg in SERVICES["prometheus"]["command"] if arg.startswith("--config.file=")
    )
    config = tmp_path / config_flag.split("=", 1)[1].lstrip("/")
    result = subprocess.run(
        ["promtool", "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules(load_rules()))} rules found" in result.stdout, result.stdout


def test_prometheus_loads_the_projects_rules_and_stores_exemplars() -> None:
    assert "--enable-feature=exemplar-storage" in SERVICES["prometheus"]["command"]
    config_dir = "/etc/prometheus"
    rules = {f"{config_dir}/{name}" for name in PROMETHEUS["rule_files"]}
    mounted_rules = {target for target in rules if target in _mounts("prometheus")}
    assert mounted_rules == rules
    assert {_mounts("prometheus")[t] for t in rules} == {REPO / "deploy/prometheus/rules.yml"}


def test_prometheus_scrapes_the_services_metrics_port_by_its_compose_name() -> None:
    (job,) = [job for job in PROMETHEUS["scrape_configs"] if job["job_name"] == "lucidserve"]
    (static,) = job["static_configs"]
    assert [_host_port(target) for target in static["targets"]] == [("lucidserve", METRICS_PORT)]
    assert Settings.model_fields["metrics_port"].default == METRICS_PORT
    assert "LUCIDSERVE_METRICS_PORT" not in SERVICES["lucidserve"]["environment"]
    # The dashboards select on namespace, as in Kubernetes.
    assert static["labels"]["namespace"]


def test_grafana_prometheus_datasource_points_at_the_prometheus_service() -> None:
    prometheus = _datasource("prometheus")
    assert _host_port(prometheus["url"]) == ("prometheus", 9090)
    assert prometheus["isDefault"] is True  # what the dashboards' datasource variable picks
    scrape = PROMETHEUS["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == scrape  # $__rate_interval's floor


def test_exemplars_link_the_service_trace_id_label_to_the_tempo_datasource() -> None:
    tempo = _datasource("tempo")
    (destination,) = _datasource("prometheus")["jsonData"]["exemplarTraceIdDestinations"]
    assert destination["datasourceUid"] == tempo["uid"]
    # That the service's exemplars carry this label, a real Prometheus shows in test_dashboards.py.
    assert destination["name"] == "trace_id"
    assert _host_port(tempo["url"]) == ("tempo", TEMPO["server"]["http_listen_port"])


def test_dashboards_need_only_a_provisioned_prometheus() -> None:
    kinds = {ds["type"] for ds in DATASOURCES["datasources"]}
    uids = {ds["uid"] for ds in DATASOURCES["datasources"]}
    for path in DASHBOARDS:
        (variable,) = [
            v for v in load_dashboard(path)["templating"]["list"] if v["type"] == "datasource"
        ]
        assert variable["query"] in kinds
        assert not uids & set(re.findall(r'"uid": "([^"]+)"', path.read_text())), path.name


def test_grafana_provider_reads_the_mounted_dashboards() -> None:
    (provider,) = PROVIDERS["providers"]
    mounts = _mounts("grafana")
    assert mounts[provider["options"]["path"]] == REPO / "grafana" / "dashboards"
    assert mounts["/etc/grafana/provisioning"] == PROVISIONING
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO / "grafana" / "dashboards" / Path(home).name).is_file()
    assert Path(home).parent == Path(provider["options"]["path"])


def test_the_service_exports_traces_to_the_collectors_otlp_http_receiver() -> None:
    endpoint = SERVICES["lucidserve"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    receiver = COLLECTOR["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    host, port = _host_port(endpoint)
    assert host == "otel-collector"
    assert port == _host_port(receiver)[1] == 4318


def test_the_collector_sends_traces_to_tempos_otlp_grpc_receiver() -> None:
    pipeline = COLLECTOR["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(COLLECTOR[kind]), kind
    (exporter,) = pipeline["exporters"]
    tempo_grpc = TEMPO["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert _host_port(COLLECTOR["exporters"][exporter]["endpoint"]) == (
        "tempo",
        _host_port(tempo_grpc)[1],
    )


def test_the_traffic_generator_targets_the_service() -> None:
    traffic = SERVICES["traffic"]
    assert traffic["image"] == SERVICES["lucidserve"]["image"]
    assert _host_port(traffic["entrypoint"][2]) == ("lucidserve", SERVICE_PORT)
    assert traffic["entrypoint"][1] in _mounts("traffic")
