"""Several gunicorn workers: the metrics port tells the pooled truth of all of them."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import worker_connections
from tests.support.processes import Service, start_service, wait_until

SAMPLE = {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 5.1, "petal_width": 1.8}
REQUESTS = [
    ("POST", "/v1/predict", {"samples": [SAMPLE]}, 200),
    ("POST", "/v1/predict/virginica", {"samples": [SAMPLE, SAMPLE]}, 200),
    ("POST", "/v1/predict", {"samples": [{**SAMPLE, "petal_width": "x"}]}, 422),
    ("GET", "/v1/model", None, 200),
    ("GET", "/nowhere", None, 404),
]
ROUTES = {"/v1/predict": "/v1/predict", "/v1/predict/virginica": "/v1/predict/{label}",
          "/v1/model": "/v1/model", "/nowhere": "unmatched"}  # fmt: skip


def request_counts(text: str) -> Counter[tuple[str, str, str]]:
    """http_server_request_duration_seconds_count by (method, route, status)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_server_request_duration_seconds_count":
                labels = sample.labels
                key = (labels["http_request_method"], labels["http_route"],
                       labels["http_response_status_code"])  # fmt: skip
                counts[key] += int(sample.value)
    return counts


def gauge_total(text: str, name: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


def send(client: httpx.Client, method: str, path: str, body: object) -> int | None:
    try:
        return client.request(method, path, json=body).status_code
    except httpx.TransportError:
        return None  # the worker serving it was killed: not a served request


def traffic(url: str, rounds: int) -> Counter[tuple[str, str, str]]:
    sent: Counter[tuple[str, str, str]] = Counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        clients = [httpx.Client(base_url=url, timeout=30) for _ in range(8)]
        jobs = [
            (pool.submit(send, clients[i % 8], method, path, body), method, path)
            for i, (method, path, body, _) in enumerate(REQUESTS * rounds)
        ]
        for job, method, path in jobs:
            status = job.result()
            if status is not None:
                sent[(method, ROUTES[path], str(status))] += 1
        for client in clients:
            client.close()
    return sent


@pytest.fixture
def two_workers(iris_bundle: Path, tmp_path: Path) -> Service:
    env = {"LUCIDSERVE_MULTIPROC_DIR": str(tmp_path / "metrics")}
    svc = start_service(iris_bundle, tmp_path / "service.log", workers=2, env=env)
    yield svc
    svc.stop()


def test_request_counts_are_exact_across_two_workers(two_workers: Service) -> None:
    sent = traffic(two_workers.url, rounds=40)
    assert sum(sent.values()) == 200
    for _ in range(6):  # several scrapes, all tell the same truth
        counts = request_counts(two_workers.metrics())
        for key, number in sent.items():
            assert counts[key] == number, key
    metrics = two_workers.metrics()
    # Nothing in flight: a scrape of the metrics port is no request to a worker.
    assert gauge_total(metrics, "http_server_active_requests") == 0
    predictions = sum(
        s.value
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "model_predictions_total"
    )
    assert predictions == 40 * 3


def test_sigkilled_worker_loses_no_counts_and_leaves_no_stale_gauge(
    two_workers: Service, tmp_path: Path
) -> None:
    before = traffic(two_workers.url, rounds=20)
    workers = _worker_pids(two_workers)
    os.kill(workers[0], signal.SIGKILL)
    wait_until(
        lambda: (
            len(set(_worker_pids(two_workers)) - {workers[0]}) == 2
            and two_workers.output().count('"event":"model_ready"') >= 3
        ),
        timeout=60,
        what="a replacement worker",
    )
    after = traffic(two_workers.url, rounds=20)
    metrics = two_workers.metrics()
    counts = request_counts(metrics)
    for key in before.keys() | after.keys():
        assert counts[key] == before[key] + after[key], key
    assert gauge_total(metrics, "http_server_active_requests") == 0
    model_info = [
        s
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "model_info"
    ]
    assert [s.value for s in model_info] == [1.0]
    leftovers = list((tmp_path / "metrics").glob(f"*_{workers[0]}.*"))
    assert not leftovers, "the dead worker's files were not compacted"


def _worker_pids(svc: Service) -> list[int]:
    return sorted(worker_connections.worker_pids(svc.pid))


def test_exemplars_are_exposed_with_two_workers(iris_bundle: Path, tmp_path: Path) -> None:
    env = {"OTEL_TRACES_SAMPLER": "always_on"}
    svc = start_service(iris_bundle, tmp_path / "service.log", workers=2, env=env)
    try:
        traffic(svc.url, rounds=4)
        text = svc.metrics(openmetrics=True)
        exemplified = re.findall(
            r"^(http_server_request_duration_seconds_bucket|model_inference_duration_seconds_bucket)"
            r'\{.*\} \S+ # \{trace_id="([0-9a-f]{32})"\}',
            text,
            re.MULTILINE,
        )
        names = {name for name, _ in exemplified}
        assert names == {
            "http_server_request_duration_seconds_bucket",
            "model_inference_duration_seconds_bucket",
        }
        logged = set(re.findall(r'"trace_id":"([0-9a-f]{32})"', svc.output()))
        assert {trace for _, trace in exemplified} <= logged
    finally:
        svc.stop()
