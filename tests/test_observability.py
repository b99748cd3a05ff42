"""Observability end to end: real OTLP export, a real Prometheus, logs that lose nothing."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import rfc8785

from tests.support.otlp import OtlpReceiver
from tests.support.processes import Service, start_service, wait_until
from tests.support.prometheus import prometheus_binary, start_prometheus

SAMPLE = {"sepal_length": 6.3, "sepal_width": 2.9, "petal_length": 5.6, "petal_width": 1.8}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    otlp = OtlpReceiver().start()
    yield otlp
    otlp.stop()


def traced_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_SERVICE_NAME": "lucidserve-test",
    }


def log_records(service: Service) -> list[dict]:
    return [json.loads(line) for line in service.log_lines() if line.strip()]


def canonical_hash(sample: dict, key: bytes | None = None) -> str:
    """The README's documented canonical form (RFC 8785 of the floats), recomputed independently."""
    canonical = rfc8785.dumps({name: float(value) for name, value in sample.items()})
    if key:
        return hmac.new(key, canonical, hashlib.sha256).hexdigest()
    return hashlib.sha256(canonical).hexdigest()


def test_spans_reach_the_collector_with_the_log_and_trace_ids(
    iris_bundle: Path, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    svc = start_service(iris_bundle, tmp_path / "service.log", env=traced_env(receiver))
    parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        response = svc.client.post(
            "/v1/predict",
            json={"samples": [SAMPLE, SAMPLE]},
            headers={"traceparent": f"00-{parent_trace}-00f067aa0ba902b7-01"},
        )
        assert response.status_code == 200
        request_id = response.json()["request_id"]
        wait_until(lambda: parent_trace in receiver.trace_ids(), timeout=20, what="spans")
        spans = {s.name: s for s in receiver.snapshot() if s.trace_id == parent_trace}
        assert {"POST /v1/predict", "queue", "inference", "serialize"} <= set(spans)
        server = spans["POST /v1/predict"]
        assert server.parent_span_id == "00f067aa0ba902b7"  # W3C traceparent continued
        assert spans["inference"].parent_span_id == server.span_id
        assert spans["inference"].attributes["model.request_rows"] == 2
        assert spans["inference"].attributes["model.batch_rows"] >= 2
        assert spans["queue"].attributes["model.queue_ms"] >= 0
        slack = 1_000_000  # ns: children are drawn from perf_counter, the server span from time_ns
        for child in ("queue", "inference", "serialize"):
            span = spans[child]
            assert span.parent_span_id == server.span_id
            assert server.start_ns - slack <= span.start_ns <= span.end_ns <= server.end_ns + slack
        assert spans["queue"].end_ns <= spans["inference"].start_ns <= spans["serialize"].start_ns
        assert server.resource["service.name"] == "lucidserve-test"
        assert server.resource["model.name"] == "iris"
        lines = [r for r in log_records(svc) if r.get("request_id") == request_id]
        assert {r["event"] for r in lines} == {"prediction", "access"}
        assert all(r["trace_id"] == parent_trace for r in lines)
        assert all(r["span_id"] == server.span_id for r in lines)

        label_trace = "5cf92f3577b34da6a3ce929d0e0e4737"
        response = svc.client.post(
            "/v1/predict/setosa",
            json={"samples": [SAMPLE]},
            headers={"traceparent": f"00-{label_trace}-00f067aa0ba902b8-01"},
        )
        assert response.status_code == 200
        wait_until(lambda: label_trace in receiver.trace_ids(), timeout=20, what="label spans")
        names = {s.name for s in receiver.snapshot() if s.trace_id == label_trace}
        assert {"POST /v1/predict/{label}", "queue", "inference", "serialize"} <= names
    finally:
        svc.stop()


def test_unsampled_requests_log_no_trace_ids(iris_bundle: Path, tmp_path: Path) -> None:
    env = {"OTEL_TRACES_SAMPLER": "always_off"}
    svc = start_service(iris_bundle, tmp_path / "service.log", env=env)
    try:
        assert svc.client.post("/v1/predict", json={"samples": [SAMPLE]}).status_code == 200
        svc.stop()
        records = log_records(svc)
        assert records
        assert not [r for r in records if "trace_id" in r or "span_id" in r]
        loggers = {r["logger"] for r in records}
        assert {"gunicorn.error", "uvicorn.error", "lucidserve.predictions"} <= loggers
    finally:
        svc.stop()


def test_input_hash_ignores_key_order_and_number_formatting(service: Service) -> None:
    bodies = [
        b'{"samples":[{"sepal_length":6.3,"sepal_width":2.9,"petal_length":5.6,"petal_width":1.8}]}',
        b'{"samples":[{"petal_width":1.80,"petal_length":5.60,"sepal_width":2.90,"sepal_length":6.30}]}',
        b'{"samples":[{"sepal_length":6.3,"sepal_width":2.9,"petal_length":5.6,"petal_width":1.9}]}',
    ]
    ids = [
        service.client.post(
            "/v1/predict", content=b, headers={"content-type": "application/json"}
        ).json()["request_id"]
        for b in bodies
    ]
    hashes = wait_until(lambda: _hashes(service, ids), timeout=10, what="prediction lines")
    assert hashes[0] == hashes[1] == canonical_hash(SAMPLE)
    assert hashes[2] != hashes[0]
    assert _schemes(service, ids) == {"jcs-sha256"}


def test_input_hash_is_an_hmac_when_a_key_is_set(iris_bundle: Path, tmp_path: Path) -> None:
    env = {"LUCIDSERVE_INPUT_HASH_KEY": "warehouse-join-key"}
    svc = start_service(iris_bundle, tmp_path / "service.log", env=env)
    try:
        request_id = svc.client.post("/v1/predict", json={"samples": [SAMPLE]}).json()["request_id"]
        hashes = wait_until(lambda: _hashes(svc, [request_id]), timeout=10, what="the line")
        assert hashes[0] == canonical_hash(SAMPLE, b"warehouse-join-key")
        assert hashes[0] != canonical_hash(SAMPLE)
        assert _schemes(svc, [request_id]) == {"jcs-hmac-sha256"}
    finally:
        svc.stop()


def _hashes(service: Service, request_ids: list[str]) -> list[str] | None:
    by_id = {
        r["request_id"]: r["input_hash"]
        for r in log_records(service)
        if r.get("event") == "prediction"
    }
    return [by_id[i] for i in request_ids] if all(i in by_id for i in request_ids) else None


def _schemes(service: Service, request_ids: list[str]) -> set[str]:
    return {
        r["input_hash_scheme"]
        for r in log_records(service)
        if r.get("event") == "prediction" and r["request_id"] in request_ids
    }


def test_nothing_is_lost_when_sigterm_arrives_under_load(
    iris_bundle: Path, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    svc = start_service(iris_bundle, tmp_path / "service.log", workers=2, env=traced_env(receiver))
    rng = random.Random(7)
    samples = [
        {k: round(v + rng.uniform(-0.3, 0.3), 2) for k, v in SAMPLE.items()} for _ in range(500)
    ]
    served: dict[str, dict] = {}

    def predict(sample: dict, client: httpx.Client) -> None:
        try:
            response = client.post("/v1/predict", json={"samples": [sample]})
        except httpx.TransportError:
            return  # refused after the listener closed: never served
        if response.status_code == 200:
            served[response.json()["request_id"]] = sample

    clients = [httpx.Client(base_url=svc.url, timeout=30) for _ in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(predict, s, clients[i % 8]) for i, s in enumerate(samples)]
        wait_until(lambda: len(served) >= 250, timeout=60, what="half the load served")
        os.kill(svc.pid, signal.SIGTERM)
        for job in jobs:
            job.result()
    for client in clients:
        client.close()
    assert svc.proc.wait(timeout=40) == 0
    assert len(served) >= 250
    records = log_records(svc)  # every line parses as JSON, or this raises
    predictions = {r["request_id"]: r for r in records if r.get("event") == "prediction"}
    missing = set(served) - set(predictions)
    assert not missing, f"{len(missing)} served predictions have no log line"
    for request_id, sample in served.items():
        assert predictions[request_id]["input_hash"] == canonical_hash(sample)
    logged_traces = {predictions[r]["trace_id"] for r in served}
    deadline = time.monotonic() + 10
    while not logged_traces <= receiver.trace_ids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert logged_traces <= receiver.trace_ids(), "spans of served requests were not exported"
    names: dict[str, set[str]] = {}
    for span in receiver.snapshot():
        names.setdefault(span.trace_id, set()).add(span.name)
    whole = {"POST /v1/predict", "queue", "inference", "serialize"}
    partial = [t for t in logged_traces if not whole <= names.get(t, set())]
    assert not partial, f"{len(partial)} of {len(logged_traces)} traces lack spans"


@pytest.mark.slow
@pytest.mark.skipif(prometheus_binary() is None, reason="Debian's prometheus is not installed")
def test_a_real_prometheus_scrapes_rates_and_exemplars(
    iris_bundle: Path, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    svc = start_service(iris_bundle, tmp_path / "service.log", workers=2, env=traced_env(receiver))
    prom = start_prometheus([f"127.0.0.1:{svc.metrics_port}"], tmp_path / "prometheus")
    try:
        start = time.time()
        prom.wait_for_series("up == 1")
        rate = (
            'sum(rate(http_server_request_duration_seconds_count{http_route="/v1/predict"}[10s]))'
        )

        def traffic_then_rate() -> bool:
            for _ in range(5):  # keep traffic flowing: a rate needs two scrapes that differ
                svc.client.post("/v1/predict", json={"samples": [SAMPLE]})
            return _positive(prom.query(rate))

        wait_until(traffic_then_rate, timeout=30, interval=0.2, what="a request rate")

        def exemplar_traces() -> set[str]:
            found = prom.query_exemplars(
                "http_server_request_duration_seconds_bucket", start, time.time() + 5
            )
            return {e["labels"]["trace_id"] for series in found for e in series["exemplars"]}

        traces = wait_until(exemplar_traces, timeout=30, what="exemplars in Prometheus")
        logged = {r["trace_id"] for r in log_records(svc) if "trace_id" in r}
        assert traces <= logged
        wait_until(lambda: traces <= receiver.trace_ids(), timeout=20, what="exported spans")
    finally:
        prom.stop()
        svc.stop()


def _positive(result: list[dict]) -> bool:
    return bool(result) and float(result[0]["value"][1]) > 0
