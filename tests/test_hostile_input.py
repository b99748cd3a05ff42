"""Hostile and extreme input against a real server: bounded cost, the right 4xx, never a 500.

Each refusal is measured from /proc on the worker that served it: CPU time spent and resident
memory before and after. The bounds are ten times what the refusals cost, and a hundred times
below what per-sample validation of the same bodies used to cost (10-13 s, 2.3 GB).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import worker_connections
from tests.support.models import package_faulty_model
from tests.support.proc import children, cpu_seconds, rss_bytes
from tests.support.processes import (
    BIN,
    REPO,
    Service,
    free_port,
    start_process,
    start_service,
    wait_until,
)
from tests.test_api import SETOSA, assert_error

MB = 1024 * 1024
FLOAT32_MAX = 3.4028234663852886e38
WRONG_TYPES = b'{"sepal_length":"x","sepal_width":"y","petal_length":"z","petal_width":"w"}'
HOSTILE_BODIES = {
    # About 333,000 empty samples: one error per missing field would be 1.3 million errors.
    "empty-samples": (b'{"samples":[' + b",".join([b"{}"] * 333_000) + b"]}", 413),
    # 12,500 samples of strings where numbers belong.
    "wrong-types": (b'{"samples":[' + b",".join([WRONG_TYPES] * 12_500) + b"]}", 413),
    # One sample with 90,000 unknown fields and none of the model's.
    "unknown-fields": (
        b'{"samples":[{' + b",".join(b'"f%d":1' % i for i in range(90_000)) + b"}]}",
        422,
    ),
}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The Faulty test model with a short deadline and stall time; x == 888 blocks 2 s."""
    bundle = package_faulty_model(tmp_path_factory.mktemp("faulty"))
    env = {
        "PYTHONPATH": str(REPO),
        "LUCIDSERVE_REQUEST_TIMEOUT_SECONDS": "0.5",
        "LUCIDSERVE_INFERENCE_STALL_SECONDS": "0.5",
        "FAULTY_BLOCK_SECONDS": "2",
    }
    svc = start_service(bundle, tmp_path_factory.mktemp("faulty-service") / "log", env=env)
    yield svc
    svc.stop()


def _worker(svc: Service) -> int:
    (worker,) = worker_connections.worker_pids(svc.pid)
    return worker


def _metric(svc: Service, name: str) -> float:
    lines = [line for line in svc.metrics().splitlines() if line.startswith(name)]
    assert lines, f"{name} is not exposed"
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_a_hostile_1_mb_body_is_refused_cheaply(service: Service, name: str) -> None:
    body, status = HOSTILE_BODIES[name]
    assert 0.9 * MB < len(body) <= MB
    worker = _worker(service)
    cpu, rss = cpu_seconds(worker), rss_bytes(worker)
    response = service.client.post(
        "/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    spent, grown = cpu_seconds(worker) - cpu, rss_bytes(worker) - rss
    assert_error(response, status)
    assert len(response.content) < 64 * 1024
    assert spent < 1.0, f"{spent:.2f} s of CPU to refuse it"
    assert grown < 16 * MB, f"the worker grew by {grown / MB:.1f} MB"
    assert service.client.post("/v1/predict", json={"samples": [SETOSA]}).status_code == 200


def test_error_details_are_capped_and_counted(service: Service) -> None:
    body = assert_error(
        service.client.post("/v1/predict", json={"samples": [{}] * 999}), 422, "validation_error"
    )
    assert len(body["error"]["details"]) == 20
    assert "3996 problems" in body["error"]["message"]


def test_unknown_fields_are_named_and_long_names_cut(service: Service) -> None:
    sample = {**SETOSA, "colour": "red", "k" * 5000: 1}
    body = assert_error(service.client.post("/v1/predict", json={"samples": [SETOSA, sample]}), 422)
    locs = [d["loc"] for d in body["error"]["details"]]
    assert locs[0] == ["samples", 1, "colour"]
    assert locs[1][:2] == ["samples", 1]
    assert len(locs[1][2]) <= 80
    assert {d["type"] for d in body["error"]["details"]} == {"extra_forbidden"}


def test_a_number_beyond_what_the_model_takes_is_a_422_naming_sample_and_feature(
    service: Service,
) -> None:
    sample = {**SETOSA, "petal_width": 1e308}
    body = assert_error(service.client.post("/v1/predict", json={"samples": [SETOSA, sample]}), 422)
    assert body["error"]["details"][0]["loc"] == ["samples", 1, "petal_width"]
    spec = service.client.get("/openapi.json").json()
    width = spec["components"]["schemas"]["Sample"]["properties"]["petal_width"]
    assert width["maximum"] == FLOAT32_MAX
    assert width["minimum"] == -FLOAT32_MAX
    edge = {**SETOSA, "petal_width": FLOAT32_MAX}
    assert service.client.post("/v1/predict", json={"samples": [edge]}).status_code == 200


def test_a_request_whose_deadline_passes_in_the_queue_is_504_and_not_computed(
    faulty: Service,
) -> None:
    expired_before = _metric(faulty, "model_requests_expired_total")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        blocking = pool.submit(faulty.client.post, "/v1/predict", json={"samples": [{"x": 888.0}]})
        wait_until(
            lambda: _metric(faulty, "model_queue_rows") >= 1, timeout=10, what="the model busy"
        )
        queued = faulty.client.post("/v1/predict", json={"samples": [{"x": 1.0}]})
        assert blocking.result().status_code == 200  # already computing when its deadline passed
    assert_error(queued, 504, "deadline_exceeded")
    assert _metric(faulty, "model_requests_expired_total") == expired_before + 1


def test_a_body_sent_too_slowly_is_cut_off_with_408(faulty: Service) -> None:
    with socket.create_connection(("127.0.0.1", faulty.port), timeout=10) as raw:
        raw.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"samples": ['
        )
        answer = b""
        while chunk := raw.recv(4096):  # the server answers, then closes the connection
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["error"]["type"] == "request_timeout"


def test_a_stalled_inference_thread_fails_liveness_until_it_moves(faulty: Service) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        blocking = pool.submit(faulty.client.post, "/v1/predict", json={"samples": [{"x": 888.0}]})
        wait_until(
            lambda: faulty.client.get("/healthz").status_code == 503, timeout=10, what="stall"
        )
        assert_error(faulty.client.get("/healthz"), 503, "stalled")
        assert _metric(faulty, "model_inference_stalled") == 1
        assert blocking.result().status_code == 200
    wait_until(lambda: faulty.client.get("/healthz").status_code == 200, timeout=10, what="ok")
    assert _metric(faulty, "model_inference_stalled") == 0
    assert '"event":"inference_stalled"' in faulty.output()


def test_a_stalled_worker_is_replaced_by_gunicorn(tmp_path: Path) -> None:
    bundle = package_faulty_model(tmp_path)
    env = {
        "PYTHONPATH": str(REPO),
        "LUCIDSERVE_TIMEOUT": "4",
        "LUCIDSERVE_INFERENCE_STALL_SECONDS": "0.5",
        "FAULTY_BLOCK_SECONDS": "120",
    }
    svc = start_service(bundle, tmp_path / "service.log", env=env)
    try:
        first = _worker(svc)
        with pytest.raises(httpx.HTTPError):  # the worker dies under this request
            svc.client.post("/v1/predict", json={"samples": [{"x": 888.0}]}, timeout=60)
        wait_until(lambda: _worker_replaced(svc, first), timeout=60, what="a new worker, ready")
        assert "WORKER TIMEOUT" in svc.output()
        assert svc.client.post("/v1/predict", json={"samples": [{"x": 1.0}]}).status_code == 200
    finally:
        svc.stop()


def _worker_replaced(svc: Service, old: int) -> bool:
    workers = worker_connections.worker_pids(svc.pid)
    return bool(workers) and old not in workers and svc.client.get("/readyz").status_code == 200


def test_a_worker_whose_model_fails_to_warm_up_ends_the_server(tmp_path: Path) -> None:
    bundle = package_faulty_model(tmp_path)
    port = free_port()
    proc = start_process(
        [str(BIN / "lucidserve"), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--model-dir", str(bundle), "--workers", "2"],
        tmp_path / "service.log",
        env={"PYTHONPATH": str(REPO), "FAULTY_BROKEN": "1"},
    )  # fmt: skip
    try:
        code = proc.proc.wait(timeout=60)
    finally:
        proc.stop(signal.SIGKILL)
    assert code != 0
    output = proc.output()
    assert '"event":"model_load_failed"' in output
    assert "Worker failed to boot" in output


def test_a_stdout_nobody_reads_drops_log_lines_and_counts_them(
    iris_bundle: Path, tmp_path: Path
) -> None:
    port = free_port()
    argv = [
        str(BIN / "lucidserve"), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--model-dir", str(iris_bundle), "--workers", "1",
    ]  # fmt: skip
    metrics_port = free_port()
    env = {
        **os.environ,
        "LUCIDSERVE_LOG_QUEUE_MAX_LINES": "50",
        "LUCIDSERVE_METRICS_PORT": str(metrics_port),
    }
    # A pipe this test never reads: once its buffer is full, every write to stdout blocks.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=60, what="ready")
        statuses = {client.post("/v1/predict", json={"samples": [SETOSA]}).status_code
                    for _ in range(400)}  # fmt: skip
        assert statuses == {200}
        dropped = [
            line for line in httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text.splitlines()
            if line.startswith("log_records_dropped_total")
        ]  # fmt: skip
        assert float(dropped[0].rsplit(" ", 1)[1]) > 0
    finally:
        client.close()
        # SIGTERM would wait on a master blocked writing to the pipe: kill the worker and it.
        for pid in [*children(proc.pid), proc.pid]:
            os.kill(pid, signal.SIGKILL)
        proc.communicate(timeout=30)
