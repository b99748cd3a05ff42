"""Child spans of a prediction request, drawn after the fact from perf_counter timestamps.

Recording a finished interval costs one span and no context switch: cheaper than opening a span
around the work, and the same in the trace. A request's three children are recorded together,
once its body is encoded, so the current span and the clock offset are read once.
"""

from __future__ import annotations

import time

from opentelemetry import trace

from lucidserve.inference.batcher import Outcome

_tracer = trace.get_tracer("lucidserve")  # a proxy: follows the provider set later, once per worker


def record_request_spans(
    outcome: Outcome, request_rows: int, serialize_started: float, serialize_finished: float
) -> None:
    """Add `queue`, `inference` and `serialize` spans under the current span, when it records.

    Each attribute is stated once, on the span it describes: every attribute costs a validation
    when the span is made and an encoding when it is exported.
    """
    if not trace.get_current_span().is_recording():
        return
    offset = time.time_ns() - int(time.perf_counter() * 1e9)  # perf_counter -> wall-clock ns
    queue_ms = round((outcome.started - outcome.enqueued) * 1000.0, 3)
    _tracer.start_span(
        "queue",
        start_time=offset + int(outcome.enqueued * 1e9),
        attributes={"model.queue_ms": queue_ms},
    ).end(end_time=offset + int(outcome.started * 1e9))
    _tracer.start_span(
        "inference",
        start_time=offset + int(outcome.started * 1e9),
        attributes={"model.batch_rows": outcome.batch_rows, "model.request_rows": request_rows},
    ).end(end_time=offset + int(outcome.finished * 1e9))
    _tracer.start_span("serialize", start_time=offset + int(serialize_started * 1e9)).end(
        end_time=offset + int(serialize_finished * 1e9)
    )
