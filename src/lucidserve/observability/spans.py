"""Child spans of a prediction request, drawn after the fact from perf_counter timestamps.

Recording a finished interval costs one span and no context switch: cheaper than opening a span
around the work, and the same in the trace.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry import trace

from lucidserve.inference.batcher import Outcome

_tracer = trace.get_tracer("lucidserve")  # a proxy: follows the provider set later, once per worker


def record_inference_spans(outcome: Outcome, request_rows: int) -> None:
    """Add `queue` and `inference` spans under the current span, when it is recording."""
    if not trace.get_current_span().is_recording():
        return
    ns = _wall_clock_ns()
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


def record_serialize_span(started: float, finished: float) -> None:
    """Add a `serialize` span (the response body's encoding), when the current span records."""
    if not trace.get_current_span().is_recording():
        return
    ns = _wall_clock_ns()
    _tracer.start_span("serialize", start_time=ns(started)).end(end_time=ns(finished))


def _wall_clock_ns() -> Callable[[float], int]:
    """perf_counter stamps to wall-clock nanoseconds, through one offset taken now."""
    offset = time.time_ns() - int(time.perf_counter() * 1e9)
    return lambda stamp: offset + int(stamp * 1e9)
