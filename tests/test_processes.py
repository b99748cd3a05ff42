"""One model in memory for every worker, and /metrics served beside the workers.

The gunicorn master loads the bundle once and forks its workers holding it; the metrics port is
answered by a process the master runs, from the workers' files, whatever the workers are doing.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import proc, worker_connections
from tests.support.models import package_faulty_model, package_large_forest
from tests.support.processes import (
    BIN,
    Service,
    free_port,
    start_process,
    start_service,
    wait_until,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (proc.pss_available() and worker_connections.available()), reason="needs Linux /proc"
    ),
]

SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def events(service: Service, name: str) -> list[dict[str, Any]]:
    """The service's JSON log lines whose `event` is `name`."""
    found = []
    for line in service.log_lines():
        if f'"event":"{name}"' in line:
            found.append(json.loads(line))
    return found


def sample_total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 16 trees: about 120 MB, well above the workers' own footprint (about 30 MB each).
    return package_large_forest(tmp_path_factory.mktemp("forest"), trees=16)


@pytest.fixture(scope="module")
def faulty_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_faulty_model(tmp_path_factory.mktemp("faulty"))


def test_workers_share_the_model_the_master_loaded(forest: Path, tmp_path: Path) -> None:
    model_bytes = (forest / "model.skops").stat().st_size
    pss = {}
    for workers in (1, 3):
        service = start_service(
            forest, tmp_path / f"{workers}.log", workers=workers, ready_timeout=180
        )
        try:
            loaded = events(service, "bundle_loaded")
            assert [e["pid"] for e in loaded] == [service.pid]  # the master, once
            assert len(worker_connections.worker_pids(service.pid)) == workers
            pss[workers] = proc.tree_pss_bytes(service.pid)
        finally:
            service.stop()
    # Were the model copied per worker, two more workers would add twice its size at least.
    assert pss[3] - pss[1] < model_bytes, (pss, model_bytes)


def test_the_master_forks_with_a_single_thread(iris_bundle: Path, tmp_path: Path) -> None:
    service = start_service(iris_bundle, tmp_path / "service.log", workers=2)
    try:
        # Not one thread pool, OTel processor or log writer started in the master.
        assert len(os.listdir(f"/proc/{service.pid}/task")) == 1
    finally:
        service.stop()


def test_a_killed_worker_comes_back_ready_without_loading_the_bundle(
    iris_bundle: Path, tmp_path: Path
) -> None:
    service = start_service(iris_bundle, tmp_path / "service.log", workers=2)
    try:
        first_ready = {e["pid"] for e in events(service, "model_ready")}
        victim = min(worker_connections.worker_pids(service.pid))
        os.kill(victim, signal.SIGKILL)

        def replacement_ready() -> int | None:
            ready = {e["pid"] for e in events(service, "model_ready")} - first_ready
            return next(iter(ready), None)

        replacement = wait_until(replacement_ready, timeout=60, what="a replacement worker ready")
        assert replacement in worker_connections.worker_pids(service.pid)
        assert [e["pid"] for e in events(service, "bundle_loaded")] == [service.pid]
        for _ in range(8):  # whichever worker answers, it predicts
            response = service.client.post("/v1/predict", json={"samples": [SETOSA]})
            assert response.status_code == 200
    finally:
        service.stop()


def test_a_worker_leaving_gracefully_keeps_the_shared_metrics(
    iris_bundle: Path, tmp_path: Path
) -> None:
    # The default, temporary multiprocess directory: only the master may remove it.
    service = start_service(iris_bundle, tmp_path / "service.log", workers=2)
    try:
        for _ in range(3):
            assert service.client.post("/v1/predict", json={"samples": [SETOSA]}).status_code == 200
        leaving = min(worker_connections.worker_pids(service.pid))
        os.kill(leaving, signal.SIGTERM)  # gunicorn's worker exits through sys.exit
        wait_until(
            lambda: (
                len(events(service, "worker_exit")) == 1
                and len(events(service, "model_ready")) == 3
            ),
            timeout=60,
            what="a replacement for the worker that left",
        )
        service.client.post("/v1/predict", json={"samples": [SETOSA]})
        assert sample_total(service.metrics(), "model_predictions_total", label="setosa") == 4
    finally:
        service.stop()


def test_metrics_answer_from_the_master_side_while_every_worker_is_blocked(
    faulty_bundle: Path, tmp_path: Path
) -> None:
    env = {"FAULTY_BLOCK_SECONDS": "15", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    service = start_service(faulty_bundle, tmp_path / "service.log", workers=2, env=env)
    workers = worker_connections.connections_to_workers(service.port, service.pid, workers=2)
    try:
        with concurrent.futures.ThreadPoolExecutor(len(workers)) as pool:
            blocked = [
                pool.submit(w.request, "POST", "/v1/predict", {"samples": [{"x": 888}]})
                for w in workers
            ]

            def both_in_flight() -> str | None:
                text = service.metrics()
                active = sample_total(text, "http_server_active_requests")
                return text if active == 2 else None

            text = wait_until(both_in_flight, timeout=30, what="both workers blocked")
            assert not any(f.done() for f in blocked)  # the scrape did not wait for them
            assert sample_total(text, "model_ready") == 1
            assert [f.result()[0] for f in blocked] == [200, 200]
    finally:
        for worker in workers:
            worker.close()
        service.stop()


def test_the_app_port_serves_no_metrics_by_default(iris_bundle: Path, tmp_path: Path) -> None:
    service = start_service(iris_bundle, tmp_path / "service.log", workers=1)
    try:
        assert service.client.get("/metrics").status_code == 404
        assert service.metrics_response().status_code == 200
        other = httpx.get(f"http://127.0.0.1:{service.metrics_port}/", timeout=30)
        assert other.status_code == 404  # the metrics port serves /metrics only
    finally:
        service.stop()


def test_metrics_on_the_app_port_only_when_asked_for(iris_bundle: Path, tmp_path: Path) -> None:
    env = {"LUCIDSERVE_METRICS_ON_APP_PORT": "true"}
    service = start_service(iris_bundle, tmp_path / "service.log", workers=2, env=env)
    try:
        service.client.post("/v1/predict", json={"samples": [SETOSA]})
        on_app_port = service.client.get("/metrics")
        assert on_app_port.status_code == 200
        for text in (on_app_port.text, service.metrics()):
            assert sample_total(text, "model_predictions_total", label="setosa") == 1
    finally:
        service.stop()


def test_a_dead_metrics_process_is_replaced(iris_bundle: Path, tmp_path: Path) -> None:
    service = start_service(iris_bundle, tmp_path / "service.log", workers=1)
    try:
        first = wait_until(
            lambda: worker_connections.metrics_process_pid(service.pid), timeout=30, what="metrics"
        )
        service.client.post("/v1/predict", json={"samples": [SETOSA]})
        os.kill(first, signal.SIGKILL)

        def replaced() -> int | None:
            pid = worker_connections.metrics_process_pid(service.pid)
            return pid if pid not in (None, first) else None

        wait_until(replaced, timeout=30, what="a new metrics process")
        text = service.metrics()  # the same port, never closed
        assert sample_total(text, "model_predictions_total", label="setosa") == 1
        assert events(service, "metrics_server_exited")
        last = worker_connections.metrics_process_pid(service.pid)
    finally:
        service.stop()
    assert not Path(f"/proc/{last}").exists()  # stopped with the server


def test_a_metrics_port_in_use_fails_the_start(iris_bundle: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [
            str(BIN / "lucidserve"), "serve", "--host", "127.0.0.1", "--port", str(free_port()),
            "--model-dir", str(iris_bundle), "--workers", "1",
        ]  # fmt: skip
        env = {"LUCIDSERVE_METRICS_PORT": str(port)}
        process = start_process(argv, tmp_path / "service.log", env=env)
        try:
            assert process.proc.wait(timeout=60) == 1
        finally:
            process.stop()
    assert '"event":"metrics_port_unavailable"' in process.output()
