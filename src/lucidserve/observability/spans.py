"""Child spans of a prediction request, drawn after the fact from the queue's timestamps."""

from __future__ import annotations

import time

from opentelemetry import trace

from lucidserve.inference.batcher import Outcome

_tracer = trace.get_tracer("lucidserve")


def record_inference_spans(outcome: Outcome, request_rows: int) -> None:
    """Add `queue` and `inference` spans under the current span, when it is recording."""
    parent = trace.get_current_span()
    if not parent.is_recording():
        return
    # perf_counter stamps become wall-clock nanoseconds through one offset taken now.
    offset = time.time_ns() - int(time.perf_counter() * 1e9)

    def ns(stamp: float) -> int:
        return offset + int(stamp * 1e9)

    attributes = {
        "model.batch_rows": outcome.batch_rows,
        "model.request_rows": request_rows,
        "model.queue_ms": round((outcome.started - outcome.enqueued) * 1000.0, 3),
    }
    queue = _tracer.start_span("queue", start_time=ns(outcome.enqueued), attributes=attributes)
    queue.end(end_time=ns(outcome.started))
    inference = _tracer.start_span(
        "inference", start_time=ns(outcome.started), attributes=attributes
    )
    inference.end(end_time=ns(outcome.finished))
