"""Child spans made in bursts (observability/spans.py), with the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lucidserve.inference.batcher import Outcome
from lucidserve.inference.predictor import BatchResult
from lucidserve.observability.spans import ChildSpans

CHILDREN = ("queue", "inference", "serialize")


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exported: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider()  # not the global provider: this test's own
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider.get_tracer("test")


def outcome(batch_rows: int = 5) -> Outcome:
    enqueued = time.perf_counter()
    result = BatchResult(np.array(["a"]), np.array([[1.0]]), None, 0.002)
    return Outcome(result, enqueued, enqueued + 0.001, enqueued + 0.003, batch_rows)


def traced_request(spans: ChildSpans, tracer: trace.Tracer, rows: int = 1) -> trace.Span:
    """A server span, current while the request records its children; ended after."""
    server = tracer.start_span("POST /v1/predict")
    with trace.use_span(server, end_on_exit=True):
        done = outcome()
        spans.record(done, rows, done.finished + 0.0001, done.finished + 0.0002)
    return server


def children(exported: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exported.get_finished_spans() if s.name in CHILDREN]


def test_spans_wait_for_a_burst_and_keep_their_parent_times_and_attributes(
    tracer: trace.Tracer, exported: InMemorySpanExporter
) -> None:
    async def scenario() -> None:
        spans = ChildSpans(tracer, burst=3, linger=3600)
        servers = [traced_request(spans, tracer, rows=2) for _ in range(2)]
        assert spans.pending() == 2
        assert children(exported) == []  # waiting for the burst
        servers.append(traced_request(spans, tracer, rows=2))
        assert spans.pending() == 0
        made = children(exported)
        assert len(made) == 9
        for server in servers:
            context = server.get_span_context()
            mine = {
                s.name: s
                for s in made
                if s.parent is not None and s.parent.span_id == context.span_id
            }
            assert set(mine) == set(CHILDREN)
            assert all(s.context.trace_id == context.trace_id for s in mine.values())
            assert all(s.context.trace_flags.sampled for s in mine.values())
            queue, inference, serialize = mine["queue"], mine["inference"], mine["serialize"]
            assert queue.end_time == inference.start_time  # the batch's start, one clock offset
            assert inference.end_time is not None
            assert serialize.start_time is not None
            assert inference.end_time < serialize.start_time
            # 1 ms in the queue, 2 ms of inference, as recorded (not when the spans were made)
            assert queue.end_time - queue.start_time == pytest.approx(1_000_000, abs=2_000)
            assert inference.end_time - inference.start_time == pytest.approx(2e6, abs=2_000)
            assert dict(queue.attributes or {}) == {"model.queue_ms": 1.0}
            assert dict(inference.attributes or {}) == {
                "model.batch_rows": 5,
                "model.request_rows": 2,
            }
            assert dict(serialize.attributes or {}) == {}

    asyncio.run(scenario())


def test_a_lone_traced_request_gets_its_spans_after_the_linger(
    tracer: trace.Tracer, exported: InMemorySpanExporter
) -> None:
    async def scenario() -> None:
        spans = ChildSpans(tracer, burst=100, linger=0.05)
        traced_request(spans, tracer)
        assert spans.pending() == 1
        deadline = time.monotonic() + 5
        while spans.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert spans.pending() == 0
        assert sorted(s.name for s in children(exported)) == sorted(CHILDREN)

    asyncio.run(scenario())


def test_flush_makes_every_waiting_span_at_once(
    tracer: trace.Tracer, exported: InMemorySpanExporter
) -> None:
    """What the app's shutdown calls before the tracer provider's last export."""

    async def scenario() -> None:
        spans = ChildSpans(tracer, burst=100, linger=3600)
        for _ in range(4):
            traced_request(spans, tracer)
        assert children(exported) == []
        spans.flush()
        assert spans.pending() == 0
        assert len(children(exported)) == 12
        spans.flush()  # nothing left: nothing more
        assert len(children(exported)) == 12

    asyncio.run(scenario())


def test_without_an_event_loop_the_spans_are_made_at_once(
    tracer: trace.Tracer, exported: InMemorySpanExporter
) -> None:
    spans = ChildSpans(tracer, burst=100, linger=3600)
    traced_request(spans, tracer)
    assert spans.pending() == 0
    assert len(children(exported)) == 3


def test_an_untraced_request_notes_nothing(
    tracer: trace.Tracer, exported: InMemorySpanExporter
) -> None:
    spans = ChildSpans(tracer, burst=1, linger=3600)
    done = outcome()
    spans.record(done, 1, done.finished, done.finished)  # no current span
    unsampled = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    with trace.use_span(unsampled):
        spans.record(done, 1, done.finished, done.finished)
    assert spans.pending() == 0
    assert exported.get_finished_spans() == ()
