"""JSON logs on stdout for every logger, written off the event loop and flushed at shutdown.

Each process has one root handler. In a serving worker it is a QueueHandler, so a request only
puts the record on a queue; a writer thread renders records and the hot path's event lines
(lines.py: one layout, one formatter, for both) and writes them to stdout in bursts: it wakes on
the first record, lets a few milliseconds of lines gather, and writes them with one call, so a
busy worker pays one thread wake-up and one write for many lines. The
queue is bounded (`LOG_QUEUE_MAX_LINES`): when stdout cannot keep up, a line past the bound is
dropped and counted (`log_records_dropped_total`), never buffered without limit and never
blocking the event loop. `LogPipeline.close()` drains it at shutdown. The pipeline is an object
handed to `create_app` (it reaches the request path through the app's observability object),
never a module global.
gunicorn's and uvicorn's loggers forward to the root handler, so their lines are JSON too.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

import orjson
from pythonjsonlogger.core import BaseJsonFormatter

from lucidserve.observability.lines import (
    Event,
    EventSink,
    QueuedRecord,
    add_trace_ids,
    json_formatter,
)

FRAMEWORK_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn")


class TraceContextFilter(logging.Filter):
    """Adds trace_id and span_id to a record while a recording span is current (never zeros)."""

    def filter(self, record: logging.LogRecord) -> bool:
        add_trace_ids(record.__dict__)
        return True


class _EnqueueAsIs(logging.handlers.QueueHandler):
    """A QueueHandler that queues the record itself (no copy, no pre-formatting; exc_info is
    kept), to be rendered on the writer thread by the reference formatter."""

    def prepare(self, record: logging.LogRecord) -> Any:
        return QueuedRecord(record)


class ForwardToRoot(logging.Handler):
    """Hands records of loggers that do not propagate (gunicorn's, uvicorn's) to the root."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


class Line(Protocol):
    """What the writer takes from the queue: an event or a queued record."""

    def render(self, formatter: BaseJsonFormatter) -> str: ...


class BoundedQueue:
    """The lines waiting for the writer; past `limit` a line is dropped and counted."""

    def __init__(self, limit: int) -> None:
        self._lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._limit = limit
        self.dropped = 0
        self.on_drop: Callable[[], object] | None = None

    def put(self, line: Any) -> None:
        # qsize() is the length of the queue's list: an O(1) read, no lock on the hot path.
        if self._lines.qsize() >= self._limit:
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop()
            return
        self._lines.put(line)

    put_nowait = put  # what logging.handlers.QueueHandler calls

    def put_always(self, line: Any) -> None:
        """Queue past the bound (the writer's stop marker)."""
        self._lines.put(line)

    def get(self) -> Any:
        return self._lines.get()

    def get_nowait(self) -> Any:
        return self._lines.get_nowait()


class BurstWriter:
    """Formats queued records and writes them to a stream in bursts, on its own thread."""

    _STOP = object()

    def __init__(
        self,
        records: BoundedQueue,
        formatter: BaseJsonFormatter,
        stream: TextIO,
        linger_seconds: float = 0.005,
    ) -> None:
        self._records = records
        self._formatter = formatter
        self._stream = stream
        self._linger = linger_seconds
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write every record queued so far, then end the thread."""
        self._records.put_always(self._STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            burst = [self._records.get()]
            time.sleep(self._linger)  # let the rest of a burst arrive
            with contextlib.suppress(queue.Empty):
                while True:
                    burst.append(self._records.get_nowait())
            stopping = any(record is self._STOP for record in burst)
            lines = [self._line(r) for r in burst if r is not self._STOP]
            if lines:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()

    def _line(self, line: Line) -> str:
        try:
            return line.render(self._formatter)
        except Exception as exc:  # one bad record must not stop the writer
            problem = {"level": "ERROR", "logger": "lucidserve.logging", "message": repr(exc)}
            return orjson.dumps(problem).decode()


class LogPipeline:
    """The process's logging setup: where event lines go, and `close()` to flush every line."""

    def __init__(
        self,
        formatter: BaseJsonFormatter,
        stream: TextIO,
        writer: BurstWriter | None = None,
        lines: BoundedQueue | None = None,
    ) -> None:
        self._formatter = formatter
        self._stream = stream
        self._writer = writer
        self._lines = lines
        self._sink: EventSink = lines.put if lines is not None else self._write_at_once

    def write_event(self, event: Event) -> None:
        """Queue the event's line (or, without a writer thread, write it at once)."""
        self._sink(event)

    def count_drops(self, count: Callable[[], object]) -> None:
        """Call `count` for every line dropped from here on (the metric's `inc`)."""
        if self._lines is not None:
            self._lines.on_drop = count

    def close(self) -> None:
        """Write every queued line; a line emitted from here on is written at once."""
        if self._writer is not None:
            self._sink = self._write_at_once
            self._writer.stop()
            self._writer = None
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._stream.flush()

    def _write_at_once(self, event: Event) -> None:
        self._stream.write(event.render(self._formatter) + "\n")
        self._stream.flush()


def configure_logging(
    level: str, *, asynchronous: bool, max_queued_lines: int = 10_000
) -> LogPipeline:
    """Route every logger to one JSON handler on stdout (through a queue of at most
    `max_queued_lines` when `asynchronous`)."""
    # The JSON lines carry none of these, and gathering them costs microseconds per record:
    # the caller's frame (a stack walk), thread, process and multiprocessing names.
    logging._srcfile = None  # the documented switch (logging HOWTO, "Optimization")
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(json_formatter())
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    target: logging.Handler = stream
    if asynchronous:
        records = BoundedQueue(max_queued_lines)
        target = _EnqueueAsIs(records)  # a queue in all that the handler asks of one
        writer = BurstWriter(records, json_formatter(), sys.stdout)
        writer.start()
        pipeline = LogPipeline(json_formatter(), sys.stdout, writer, records)
    else:
        pipeline = LogPipeline(json_formatter(), sys.stdout)
    target.addFilter(TraceContextFilter())
    root.addHandler(target)
    root.setLevel(level)
    for name in FRAMEWORK_LOGGERS:
        framework = logging.getLogger(name)
        framework.handlers = [ForwardToRoot()]
        framework.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the middleware writes access lines
    return pipeline
