"""Failures stay contained: 500s without internals, 503 while loading and when overloaded."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.models import package_faulty_model
from tests.support.processes import BIN, REPO, Service, start_process, start_service, wait_until
from tests.test_api import assert_error

PYTHONPATH = {"PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def faulty_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_faulty_model(tmp_path_factory.mktemp("faulty"))


@pytest.fixture(scope="module")
def faulty(faulty_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    log = tmp_path_factory.mktemp("faulty-service") / "service.log"
    env = {**PYTHONPATH, "LUCIDSERVE_QUEUE_MAX_ROWS": "3", "LUCIDSERVE_GRACEFUL_TIMEOUT": "10"}
    svc = start_service(faulty_bundle, log, env=env)
    yield svc
    svc.stop()


def test_model_exception_is_a_422_naming_the_sample_and_the_service_goes_on(
    faulty: Service,
) -> None:
    samples = [{"x": 1.0}, {"x": 2.0}, {"x": 666.0}, {"x": 3.0}]
    body = assert_error(
        faulty.client.post("/v1/predict", json={"samples": samples}), 422, "model_rejected_input"
    )
    assert body["error"]["details"] == {"sample": 2}
    assert "sample 2" in body["error"]["message"]
    assert "Traceback" not in str(body)
    assert faulty.client.post("/v1/predict", json={"samples": [{"x": 1.0}]}).status_code == 200


def test_non_finite_model_output_is_a_422_not_a_null_probability(faulty: Service) -> None:
    body = assert_error(
        faulty.client.post("/v1/predict", json={"samples": [{"x": 1.0}, {"x": 999.0}]}),
        422,
        "model_rejected_input",
    )
    assert body["error"]["details"] == {"sample": 1}


def test_one_bad_request_in_a_batch_does_not_fail_the_others(faulty: Service) -> None:
    bodies = [{"samples": [{"x": 777.0}]}, {"samples": [{"x": 666.0}]}, {"samples": [{"x": 9.0}]}]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        first = pool.submit(faulty.client.post, "/v1/predict", json=bodies[0])
        time.sleep(0.1)  # the slow request occupies the model, so the next two queue together
        rest = [pool.submit(faulty.client.post, "/v1/predict", json=b) for b in bodies[1:]]
        statuses = [first.result().status_code, *(r.result().status_code for r in rest)]
    assert statuses == [200, 422, 200]


def test_full_queue_sheds_with_503_and_retry_after(faulty: Service) -> None:
    slow = {"samples": [{"x": 777.0}, {"x": 777.0}]}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(faulty.client.post, "/v1/predict", json=slow) for _ in range(4)]
        responses = [f.result() for f in futures]
    shed = [r for r in responses if r.status_code == 503]
    assert shed, [r.status_code for r in responses]
    assert shed[0].headers["retry-after"] == "1"
    assert_error(shed[0], 503, "overloaded")
    metrics = faulty.metrics()
    line = next(m for m in metrics.splitlines() if m.startswith("model_requests_shed_total"))
    assert float(line.rsplit(" ", 1)[1]) >= len(shed)


def test_readyz_is_503_until_the_model_is_loaded_and_warm(
    faulty_bundle: Path, tmp_path: Path
) -> None:
    port_env = {**PYTHONPATH, "FAULTY_WARMUP_SECONDS": "3"}
    from tests.support.processes import free_port

    port = free_port()
    proc = start_process(
        [str(BIN / "lucidserve"), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--model-dir", str(faulty_bundle), "--workers", "1"],
        tmp_path / "service.log", env=port_env,
    )  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait_until(lambda: client.get("/healthz").status_code == 200, timeout=60, what="healthz")
        loading = client.get("/readyz")
        assert_error(loading, 503, "unavailable")
        assert "loading" in loading.json()["error"]["message"]
        assert_error(client.post("/v1/predict", json={"samples": [{"x": 1.0}]}), 503)
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=60, what="ready")
    finally:
        client.close()
        proc.stop()


def test_api_keys_guard_prediction_and_model_routes_only(iris_bundle: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("from-file-key\n")
    env = {"LUCIDSERVE_API_KEYS": "env-key-1,env-key-2", "LUCIDSERVE_API_KEYS_FILE": str(key_file)}
    svc = start_service(iris_bundle, tmp_path / "service.log", env=env)
    sample = {
        "samples": [
            {"sepal_length": 5.0, "sepal_width": 3.0, "petal_length": 1.5, "petal_width": 0.2}
        ]
    }
    try:
        assert_error(svc.client.post("/v1/predict", json=sample), 401, "unauthorized")
        assert_error(svc.client.get("/v1/model", headers={"X-API-Key": "wrong"}), 401)
        assert (
            svc.client.post(
                "/v1/predict", json=sample, headers={"X-API-Key": "env-key-2"}
            ).status_code
            == 200
        )
        bearer = {"Authorization": "Bearer from-file-key"}
        assert svc.client.get("/v1/model", headers=bearer).status_code == 200
        for open_path in ("/healthz", "/readyz"):
            assert svc.client.get(open_path).status_code == 200
        assert svc.metrics_response().status_code == 200
    finally:
        svc.stop()


@pytest.mark.parametrize("damage", ["missing", "tampered", "corrupt-card"])
def test_bad_bundle_stops_start_up_before_binding(
    iris_bundle: Path, tmp_path: Path, damage: str
) -> None:
    bundle = tmp_path / "bundle"
    if damage != "missing":
        subprocess.run(["cp", "-r", str(iris_bundle), str(bundle)], check=True)
    if damage == "tampered":
        with (bundle / "model.skops").open("ab") as handle:
            handle.write(b"\0")
    if damage == "corrupt-card":
        (bundle / "card.json").write_text("{not json")
    result = subprocess.run(
        [str(BIN / "lucidserve"), "serve", "--port", "1", "--model-dir", str(bundle)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if '"bundle_invalid"' in line]
    assert len(errors) == 1, result.stdout + result.stderr
    expected = {
        "missing": "card.json is missing",
        "tampered": "does not match its card",
        "corrupt-card": "not a valid model card",
    }
    assert expected[damage] in errors[0]
    assert "Listening at" not in result.stdout


def test_sigterm_drains_in_flight_requests_and_exits_zero(
    faulty_bundle: Path, tmp_path: Path
) -> None:
    env = {**PYTHONPATH, "LUCIDSERVE_GRACEFUL_TIMEOUT": "10"}
    svc = start_service(faulty_bundle, tmp_path / "service.log", workers=2, env=env)
    slow = {"samples": [{"x": 777.0}]}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(svc.client.post, "/v1/predict", json=slow) for _ in range(4)]
        wait_until(lambda: _active_requests(svc) >= 4, timeout=10, what="requests in flight")
        os.kill(svc.pid, signal.SIGTERM)
        statuses = [f.result().status_code for f in futures]
    assert svc.proc.wait(timeout=20) == 0
    assert statuses == [200] * 4
    output = svc.output()
    assert "Shutting down: Master" in output
    # Each worker left through gunicorn's exit path, whose hook flushes the log queue.
    assert output.count('"event":"worker_exit"') == 2
    assert "color_message" not in output


def _active_requests(svc: Service) -> float:
    text = svc.metrics()
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('http_server_active_requests{http_request_method="POST"}')
    ]
    return sum(values)
