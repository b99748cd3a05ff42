"""Drift statistics of a real server: iris traffic, shifted traffic, two workers, the window.

Traffic is 2,000 rows (20 requests of 100) drawn from the iris training split with 0.02 cm of
Gaussian noise, seeded (tests/support/iris_traffic.py).
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lucidserve.bundle.reference import PREDICTION
from tests.support import worker_connections
from tests.support.iris_traffic import FEATURES, as_samples, iris_rows
from tests.support.processes import Service, start_service, wait_until

pytestmark = pytest.mark.slow

TRACKED = (*FEATURES, PREDICTION)
UNSHIFTED = ("sepal_length", "sepal_width", "petal_width")
Send = Callable[[str, str, Any], tuple[int, bytes]]
# Counts are exact integers in both set-ups; the statistics differ by float rounding at most.
POOLING_TOLERANCE = 1e-9


def httpx_send(service: Service) -> Send:
    def send(method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        response = service.client.request(method, path, json=body)
        return response.status_code, response.content

    return send


def post_rows(sends: list[Send], rows: np.ndarray, batch: int = 100) -> None:
    """POST `rows` to /v1/predict in batches, taking the senders in turn."""
    for i, start in enumerate(range(0, len(rows), batch)):
        samples = as_samples(rows[start : start + batch])
        status, body = sends[i % len(sends)]("POST", "/v1/predict", {"samples": samples})
        assert status == 200, body


def drift_view(send: Send, service: Service) -> dict[str, Any]:
    """The drift gauges of the metrics port and the /v1/drift body, as one worker answers it."""
    gauges: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(service.metrics()):
        if family.name.startswith("model_drift_") and family.name != "model_drift_reference_ratio":
            for sample in family.samples:
                gauges.setdefault(sample.name, {})[sample.labels["feature"]] = sample.value
    status, body = send("GET", "/v1/drift", None)
    assert status == 200, body
    return {"metrics": gauges, "drift": orjson.loads(body)}


def start(bundle: Path, tmp: pytest.TempPathFactory, workers: int, **env: str) -> Service:
    log = tmp.mktemp("drift-service") / "service.log"
    return start_service(bundle, log, workers=workers, env=env)


@pytest.fixture(scope="module")
def normal_traffic(iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What one worker reports after 400 and after 2,000 rows of training-like traffic."""
    service = start(iris_bundle, tmp_path_factory, workers=1)
    try:
        send = httpx_send(service)
        rows = iris_rows(2000, seed=21)
        post_rows([send], rows[:400])
        under_minimum = drift_view(send, service)
        post_rows([send], rows[400:])
        return {"under_minimum": under_minimum, "complete": drift_view(send, service)}
    finally:
        service.stop()


@pytest.fixture(scope="module")
def shifted_traffic(iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What one worker reports after 2,000 rows with petal_length shifted by +1.5 cm."""
    service = start(iris_bundle, tmp_path_factory, workers=1)
    try:
        send = httpx_send(service)
        post_rows([send], iris_rows(2000, seed=22, shift={"petal_length": 1.5}))
        return drift_view(send, service)
    finally:
        service.stop()


def test_under_the_minimum_sample_size_no_psi_is_a_number(normal_traffic: dict[str, Any]) -> None:
    view = normal_traffic["under_minimum"]
    metrics, drift = view["metrics"], view["drift"]
    for feature in TRACKED:
        assert math.isnan(metrics["model_drift_psi"][feature])
        assert math.isnan(metrics["model_drift_pvalue"][feature])
        assert metrics["model_drift_insufficient_data"][feature] == 1.0
        assert metrics["model_drift_window_observations"][feature] == 400.0
        assert drift["features"][feature]["psi"] is None
        assert drift["features"][feature]["status"] == "insufficient_data"
    assert drift["status"] == "insufficient_data"


def test_training_like_traffic_has_psi_below_0_1_everywhere(normal_traffic: dict[str, Any]) -> None:
    view = normal_traffic["complete"]
    for feature in TRACKED:
        assert view["metrics"]["model_drift_insufficient_data"][feature] == 0.0
        assert view["metrics"]["model_drift_window_observations"][feature] == 2000.0
        assert view["metrics"]["model_drift_psi"][feature] < 0.1, feature
        assert view["drift"]["features"][feature]["status"] == "ok"
    assert view["drift"]["status"] == "ok"


def test_metrics_and_the_drift_endpoint_agree(normal_traffic: dict[str, Any]) -> None:
    view = normal_traffic["complete"]
    for feature in TRACKED:
        body = view["drift"]["features"][feature]
        assert view["metrics"]["model_drift_psi"][feature] == pytest.approx(body["psi"])
        assert view["metrics"]["model_drift_pvalue"][feature] == pytest.approx(body["pvalue"])


def test_shifted_petal_length_alerts_with_a_tiny_p_value(shifted_traffic: dict[str, Any]) -> None:
    metrics, drift = shifted_traffic["metrics"], shifted_traffic["drift"]
    assert metrics["model_drift_psi"]["petal_length"] > 0.25
    assert metrics["model_drift_pvalue"]["petal_length"] < 0.001
    assert drift["features"]["petal_length"]["status"] == "alert"
    for feature in UNSHIFTED:
        assert metrics["model_drift_psi"][feature] < 0.1, feature
    assert drift["status"] == "alert"


@pytest.mark.skipif(not worker_connections.available(), reason="needs Linux /proc")
def test_two_workers_report_the_single_process_statistics_whichever_answers(
    iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory, shifted_traffic: dict[str, Any]
) -> None:
    service = start(iris_bundle, tmp_path_factory, workers=2)
    workers = worker_connections.connections_to_workers(service.port, service.pid, workers=2)
    try:
        sends: list[Send] = [w.request for w in workers]
        post_rows(sends, iris_rows(2000, seed=22, shift={"petal_length": 1.5}))
        views = [drift_view(send, service) for send in sends]
    finally:
        for worker in workers:
            worker.close()
        service.stop()
    assert views[0] == views[1]  # every gauge, every bin, exactly
    single = shifted_traffic["metrics"]
    for name in ("model_drift_psi", "model_drift_pvalue", "model_drift_window_observations"):
        for feature in TRACKED:
            assert views[0]["metrics"][name][feature] == pytest.approx(
                single[name][feature], rel=POOLING_TOLERANCE, abs=1e-300
            ), (name, feature)


def test_the_window_forgets_shifted_traffic(
    iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    service = start(
        iris_bundle,
        tmp_path_factory,
        workers=2,
        LUCIDSERVE_DRIFT_WINDOW_SECONDS="6",
        LUCIDSERVE_DRIFT_SLOT_SECONDS="1",
        LUCIDSERVE_DRIFT_MIN_SAMPLES="200",
    )
    try:
        send = httpx_send(service)
        post_rows([send], iris_rows(300, seed=23, shift={"petal_length": 1.5}))
        assert drift_view(send, service)["drift"]["features"]["petal_length"]["status"] == "alert"
        normal = iris_rows(300, seed=24)

        def back_to_ok() -> bool:
            post_rows([send], normal)
            petal = drift_view(send, service)["drift"]["features"]["petal_length"]
            return bool(petal["status"] == "ok")

        wait_until(back_to_ok, timeout=40, interval=0.5, what="petal_length back to ok")
    finally:
        service.stop()


@pytest.mark.skipif(not worker_connections.available(), reason="needs Linux /proc")
def test_a_killed_workers_counts_stay_and_its_replacement_takes_over_its_file(
    iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    multiproc_dir = tmp_path_factory.mktemp("multiproc")
    service = start(iris_bundle, tmp_path_factory, workers=2,
                    LUCIDSERVE_MULTIPROC_DIR=str(multiproc_dir))  # fmt: skip
    workers = worker_connections.connections_to_workers(service.port, service.pid, workers=2)
    try:
        victim, survivor = workers
        post_rows([victim.request], iris_rows(600, seed=25))
        os.kill(victim.pid, signal.SIGKILL)
        victim.close()

        def replaced() -> list[worker_connections.WorkerConnection] | None:
            pids = worker_connections.worker_pids(service.pid)
            if len(pids) != 2 or victim.pid in pids:
                return None
            try:
                found = worker_connections.connections_to_workers(
                    service.port, service.pid, workers=2, attempts=10
                )
            except RuntimeError:  # the replacement does not accept connections yet
                return None
            if all(w.request("GET", "/readyz")[0] == 200 for w in found):
                return found
            for w in found:
                w.close()
            return None

        workers = wait_until(replaced, timeout=60, interval=0.2, what="a replacement worker")
        assert drift_view(survivor.request, service)["drift"]["features"]["petal_length"][
            "observations"
        ] == 600  # fmt: skip
        replacement = next(w for w in workers if w.pid != survivor.pid)
        post_rows([replacement.request], iris_rows(100, seed=26))
        for worker in workers:
            view = drift_view(worker.request, service)
            assert view["metrics"]["model_drift_window_observations"]["petal_length"] == 700.0
        # Only workers that counted have a file; the victim's is now the replacement's.
        ring_files = [p.name for p in (multiproc_dir / "drift-window").glob("*.ring")]
        assert ring_files == [f"{replacement.pid}.ring"]
        assert sum(
            sample.value
            for family in text_string_to_metric_families(service.metrics())
            if family.name == "model_drift_observations"
            for sample in family.samples
            if sample.name.endswith("_total") and sample.labels["feature"] == "petal_length"
        ) == 700.0  # fmt: skip
    finally:
        for worker in workers:
            worker.close()
        survivor.close()
        service.stop()
