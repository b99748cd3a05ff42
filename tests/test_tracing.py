"""Edge sampling: the parent-based decision taken from the headers, before any span is made."""

from __future__ import annotations

import contextvars
import random
import warnings
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanContext

from lucidserve.observability.tracing import (
    DEFAULT_SAMPLE_RATIO,
    EdgeSampler,
    create_tracing,
    edge_sampling_ratio,
)
from tests.support.otlp import OtlpReceiver
from tests.support.processes import start_service, wait_until

TRACE = "0af7651916cd43dd8448eb211c80319c"


def scope_with(traceparent: bytes | None) -> dict:
    headers = [(b"host", b"x")] + ([(b"traceparent", traceparent)] if traceparent else [])
    return {"type": "http", "headers": headers}


@pytest.mark.parametrize(
    ("sampler", "argument", "ratio"),
    [
        (None, None, DEFAULT_SAMPLE_RATIO),
        (None, "0.5", 0.5),
        ("parentbased_traceidratio", "0.25", 0.25),
        ("parentbased_traceidratio", "not-a-number", 1.0),
        ("parentbased_always_on", None, 1.0),
        ("parentbased_always_off", None, 0.0),
        ("always_on", None, None),
        ("traceidratio", "0.5", None),
    ],
)
def test_which_samplers_are_decided_at_the_edge(
    sampler: str | None, argument: str | None, ratio: float | None
) -> None:
    assert edge_sampling_ratio(sampler, argument) == ratio


def test_the_callers_sampled_flag_decides() -> None:
    never = EdgeSampler(0.0)
    assert not never.skip(scope_with(f"00-{TRACE}-b7ad6b7169203331-01".encode()))
    always = EdgeSampler(1.0)
    assert always.skip(scope_with(f"00-{TRACE}-b7ad6b7169203331-00".encode()))


def test_new_traces_follow_the_ratio() -> None:
    sampler = EdgeSampler(0.25)
    kept = sum(not sampler.skip(scope_with(None)) for _ in range(20_000))
    assert 4_400 < kept < 5_600  # 25 % of 20,000, far beyond chance either side
    assert EdgeSampler(1.0).skip(scope_with(b"garbage")) is False
    assert EdgeSampler(0.0).skip(scope_with(b"garbage")) is True


def test_a_new_trace_is_kept_exactly_when_the_sdks_trace_id_rule_keeps_its_id() -> None:
    """The edge decides by the id the trace will carry, so services applying TraceIdRatioBased
    to the same trace agree with it."""
    random.seed(11)  # the SDK draws ids from `random`
    sampler = EdgeSampler(0.25)
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(0.25)), id_generator=sampler.trace_ids
    )
    tracer = provider.get_tracer("test")
    rule = TraceIdRatioBased(0.25)

    def one_request() -> SpanContext | None:
        if sampler.skip(scope_with(None)):
            return None
        with tracer.start_as_current_span("request") as span:
            return span.get_span_context()

    kept = [c for c in (contextvars.copy_context().run(one_request) for _ in range(400)) if c]
    assert 50 < len(kept) < 150
    for context in kept:
        assert context.trace_flags.sampled
        decision = rule.should_sample(None, context.trace_id, "request").decision
        assert decision is Decision.RECORD_AND_SAMPLE


def test_the_provider_leaves_the_process_warning_filters_as_they_were(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """scikit-learn's forests re-apply every filter for each tree on each call: a filter added by
    the SDK's get_tracer made the model slower whenever tracing was on."""
    for name in ("OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(name, raising=False)
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        before = list(warnings.filters)
        provider = create_tracing("iris", "1").provider
        assert provider is not None
        tracer = provider.get_tracer("fastapi", "0.1")
        assert provider.get_tracer("lucidserve") is not tracer
        assert warnings.filters == before
        TracerProvider().get_tracer("fastapi")  # the SDK's own provider adds its filter
        assert len(warnings.filters) == len(before) + 1


def test_an_unsampled_service_still_continues_a_sampled_callers_trace(
    iris_bundle: Path, tmp_path: Path
) -> None:
    receiver = OtlpReceiver().start()
    env = {
        "OTEL_TRACES_SAMPLER_ARG": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    svc = start_service(iris_bundle, tmp_path / "service.log", env=env)
    sample = {"sepal_length": 5.0, "sepal_width": 3.4, "petal_length": 1.5, "petal_width": 0.2}
    try:
        traced = svc.client.post(
            "/v1/predict",
            json={"samples": [sample]},
            headers={"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"},
        )
        untraced = svc.client.post("/v1/predict", json={"samples": [sample]})
        assert traced.status_code == untraced.status_code == 200
        wait_until(lambda: TRACE in receiver.trace_ids(), timeout=20, what="the caller's trace")
        lines = svc.log_lines()
        traced_lines = [line for line in lines if traced.json()["request_id"] in line]
        untraced_lines = [line for line in lines if untraced.json()["request_id"] in line]
        assert traced_lines
        assert all(TRACE in line for line in traced_lines)
        assert untraced_lines
        assert not any('"trace_id"' in line for line in untraced_lines)
        assert receiver.trace_ids() == {TRACE}
    finally:
        svc.stop()
        receiver.stop()
