"""Child spans of a prediction request (`queue`, `inference`, `serialize`), made in bursts.

A traced request's path only notes its parent and its perf_counter timestamps; the spans are made
from them later, for several requests at once: when BURST requests are waiting, after
LINGER_SECONDS at most, and at shutdown (`flush`, before the tracer provider shuts down). Their
times are the recorded ones, so the trace is the same as if each span had been opened around its
work. Why: with 10 % of requests traced, a request that makes its spans alone runs the SDK's span
code cold, between nine untraced requests; in a burst the same code stays warm. Under wrk a traced
request cost about twice as much at 10 % as at 100 % (README, Performance, has the figures).

All of it runs on the event loop's thread (the handlers, the timer, the app's shutdown).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from opentelemetry import trace

from lucidserve.inference.batcher import Outcome

BURST = 16
LINGER_SECONDS = 0.1


@dataclass(frozen=True)
class _Noted:
    parent: trace.SpanContext
    outcome: Outcome
    request_rows: int
    serialize_started: float
    serialize_finished: float


class ChildSpans:
    """Notes the traced requests' intervals and makes their spans in bursts."""

    def __init__(self, tracer: trace.Tracer, burst: int = BURST, linger: float = LINGER_SECONDS):
        self._tracer = tracer
        self._burst = burst
        self._linger = linger
        self._noted: list[_Noted] = []
        self._timer: asyncio.TimerHandle | None = None

    def record(
        self,
        outcome: Outcome,
        request_rows: int,
        serialize_started: float,
        serialize_finished: float,
    ) -> None:
        """Note the request's child spans under the current span, when it records."""
        span = trace.get_current_span()
        if not span.is_recording():
            return
        parent = span.get_span_context()
        self._noted.append(
            _Noted(parent, outcome, request_rows, serialize_started, serialize_finished)
        )
        if len(self._noted) >= self._burst:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a direct call): no later to wait for
                self.flush()
                return
            self._timer = loop.call_later(self._linger, self.flush)

    def pending(self) -> int:
        """Requests whose spans are noted but not made yet."""
        return len(self._noted)

    def flush(self) -> None:
        """Make the spans of every noted request now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        noted, self._noted = self._noted, []
        if not noted:
            return
        offset = time.time_ns() - int(time.perf_counter() * 1e9)  # perf_counter -> wall-clock ns
        for item in noted:
            self._make(item, offset)

    def _make(self, item: _Noted, offset: int) -> None:
        # Each attribute is stated once, on the span it describes: every attribute costs a
        # validation when the span is made and an encoding when it is exported.
        outcome = item.outcome
        parent = trace.set_span_in_context(trace.NonRecordingSpan(item.parent))
        queue_ms = round((outcome.started - outcome.enqueued) * 1000.0, 3)
        self._tracer.start_span(
            "queue",
            context=parent,
            start_time=offset + int(outcome.enqueued * 1e9),
            attributes={"model.queue_ms": queue_ms},
        ).end(end_time=offset + int(outcome.started * 1e9))
        self._tracer.start_span(
            "inference",
            context=parent,
            start_time=offset + int(outcome.started * 1e9),
            attributes={
                "model.batch_rows": outcome.batch_rows,
                "model.request_rows": item.request_rows,
            },
        ).end(end_time=offset + int(outcome.finished * 1e9))
        self._tracer.start_span(
            "serialize", context=parent, start_time=offset + int(item.serialize_started * 1e9)
        ).end(end_time=offset + int(item.serialize_finished * 1e9))


# The process's one recorder. Its tracer is a proxy that follows the provider set later, once per
# worker, after fork.
child_spans = ChildSpans(trace.get_tracer("lucidserve"))
