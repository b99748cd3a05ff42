"""JSON logs on stdout for every logger, written off the event loop and flushed at shutdown.

Each process has one root handler. In a serving worker it is a QueueHandler, so a request only
puts the record on a queue; a writer thread formats records (python-json-logger's orjson
formatter) and the hot path's event lines (events.py, already dicts) and writes them to stdout
in bursts: it wakes on the first record, lets a few milliseconds of lines gather, and writes
them with one call, so a busy worker pays one thread wake-up and one write for many lines. The
queue is bounded (`LOG_QUEUE_MAX_LINES`): when stdout cannot keep up, a line past the bound is
dropped and counted (`log_records_dropped_total`), never buffered without limit and never
blocking the event loop. `LogPipeline.close()` drains it at shutdown.
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
from dataclasses import dataclass
from typing import Any, TextIO

import orjson
from pythonjsonlogger.core import RESERVED_ATTRS, BaseJsonFormatter
from pythonjsonlogger.orjson import OrjsonFormatter

from lucidserve.observability import events

FRAMEWORK_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn")


class TraceContextFilter(logging.Filter):
    """Adds trace_id and span_id to a record while a recording span is current (never zeros)."""

    def filter(self, record: logging.LogRecord) -> bool:
        events.add_trace_ids(record.__dict__)
        return True


class _EnqueueAsIs(logging.handlers.QueueHandler):
    """A QueueHandler that skips the per-record copy and pre-formatting; exc_info is kept."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class ForwardToRoot(logging.Handler):
    """Hands records of loggers that do not propagate (gunicorn's, uvicorn's) to the root."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


def json_formatter() -> BaseJsonFormatter:
    """The one formatter: RFC 3339 UTC timestamp, level, logger, message, then extra fields."""
    return OrjsonFormatter(
        "{message}{levelname}{name}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
        # uvicorn attaches a copy of some messages with terminal colour codes: not for JSON.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )


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

    def _line(self, record: logging.LogRecord | events.Event) -> str:
        try:
            if isinstance(record, tuple):
                return events.render(record, self._formatter)
            return self._formatter.format(record)
        except Exception as exc:  # one bad record must not stop the writer
            problem = {"level": "ERROR", "logger": "lucidserve.logging", "message": repr(exc)}
            return orjson.dumps(problem).decode()


def _written_at_once() -> Callable[[events.Event], None]:
    """An event sink that writes each line to stdout as it comes."""
    formatter = json_formatter()

    def write(event: events.Event) -> None:
        sys.stdout.write(events.render(event, formatter) + "\n")
        sys.stdout.flush()

    return write


@dataclass
class LogPipeline:
    """The process's logging setup; `close()` flushes every queued line."""

    writer: BurstWriter | None = None
    lines: BoundedQueue | None = None

    def count_drops(self, count: Callable[[], object]) -> None:
        """Call `count` for every line dropped from here on (the metric's `inc`)."""
        if self.lines is not None:
            self.lines.on_drop = count

    def close(self) -> None:
        if self.writer is not None:
            # A line emitted from here on is written at once, not queued.
            events.install_sink(_written_at_once())
            self.writer.stop()
            self.writer = None
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()


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
    pipeline = LogPipeline()
    target: logging.Handler = stream
    if asynchronous:
        records = pipeline.lines = BoundedQueue(max_queued_lines)
        target = _EnqueueAsIs(records)  # a queue in all that the handler asks of one
        pipeline.writer = BurstWriter(records, json_formatter(), sys.stdout)
        pipeline.writer.start()
        events.install_sink(records.put)
    else:
        events.install_sink(_written_at_once())
    target.addFilter(TraceContextFilter())
    root.addHandler(target)
    root.setLevel(level)
    for name in FRAMEWORK_LOGGERS:
        framework = logging.getLogger(name)
        framework.handlers = [ForwardToRoot()]
        framework.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the middleware writes access lines
    return pipeline
