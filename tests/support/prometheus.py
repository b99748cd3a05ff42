"""A real Prometheus for tests: Debian's `prometheus` binary on a free loopback port.

    prom = start_prometheus(["127.0.0.1:9100"], tmp_path, rule_files=[RULES])
    try:
        prom.wait_for_series("up == 1")               # polls; bounded by `timeout`
        rows = prom.query('sum(rate(x_total[10s]))')  # instant query -> result list
        exemplars = prom.query_exemplars("x_bucket", start, end)
    finally:
        prom.stop()

It scrapes the given targets every second under one job (`lucidserve` unless told otherwise),
with static labels (default `namespace="test"`, as the dashboards select on it), evaluates the
rule files every second, and stores exemplars (`--enable-feature=exemplar-storage`). Stopped by
its own pid; its log is in `workdir/prometheus.log`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.processes import ManagedProcess, free_port, start_process, wait_until

BINARY = "prometheus"


def prometheus_binary() -> str | None:
    """Path of the `prometheus` server binary, or None (install: `make system-deps`)."""
    return shutil.which(BINARY)


@dataclass
class Prometheus:
    """A running Prometheus started by `start_prometheus`."""

    process: ManagedProcess
    url: str
    client: httpx.Client = field(default_factory=httpx.Client)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query (at unix time `at`, default now); the `result` list.

        For a vector: [{"metric": {label: value}, "value": [unix_time, "number"]}, ...].
        """
        params = {"query": expr} if at is None else {"query": expr, "time": str(at)}
        return list(self._get("/api/v1/query", params)["result"])

    def query_exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """Exemplars of the series `expr` selects between two unix times, per series:

        [{"seriesLabels": {...}, "exemplars": [{"labels": {"trace_id": ...}, "value": "0.01",
        "timestamp": 1.7e9}, ...]}, ...]
        """
        params = {"query": expr, "start": str(start), "end": str(end)}
        return list(self._get("/api/v1/query_exemplars", params))

    def wait_for_series(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll `expr` until it returns at least one series; that result."""
        return wait_until(lambda: self.query(expr), timeout=timeout, interval=0.25, what=expr)

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets, with their `health` and `lastError`."""
        return list(self._get("/api/v1/targets", {})["activeTargets"])

    def rule_groups(self) -> list[dict[str, Any]]:
        """The loaded rule groups, each rule with its `health` and `lastError`."""
        return list(self._get("/api/v1/rules", {})["groups"])

    def stop(self) -> int:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); its exit code."""
        self.client.close()
        return self.process.stop(timeout=10.0)

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        response = self.client.get(path, params=params)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise RuntimeError(f"{path} {dict(params)}: {response.status_code} {body}")
        return body["data"]


def start_prometheus(
    targets: Sequence[str],
    workdir: Path,
    *,
    rule_files: Sequence[Path] = (),
    job: str = "lucidserve",
    labels: Mapping[str, str] | None = None,
    interval: str = "1s",
    ready_timeout: float = 30.0,
) -> Prometheus:
    """Start Prometheus scraping `targets` ("host:port") and wait until /-/ready answers 200."""
    binary = prometheus_binary()
    if binary is None:
        raise FileNotFoundError("prometheus is not installed (make system-deps)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(Path(path).resolve()) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [
                    {
                        "targets": list(targets),
                        "labels": dict(labels if labels is not None else {"namespace": "test"}),
                    }
                ],
            }
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    process = start_process(argv, workdir / "prometheus.log", name="prometheus")
    url = f"http://127.0.0.1:{port}"
    prometheus = Prometheus(process=process, url=url, client=httpx.Client(base_url=url, timeout=10))

    def ready() -> bool:
        if process.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited early:\n{process.output()[-4000:]}")
        return prometheus.client.get("/-/ready").status_code == 200

    try:
        wait_until(ready, timeout=ready_timeout, interval=0.1, what=f"{url}/-/ready")
    except BaseException:
        prometheus.stop()
        raise
    return prometheus
