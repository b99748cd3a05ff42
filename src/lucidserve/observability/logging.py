"""JSON logs on stdout for every logger, written off the event loop and flushed at shutdown.

Each process has one root handler. In a serving worker it is a QueueHandler, so a request only
puts the record on a queue; a listener thread formats it (python-json-logger's orjson formatter)
and writes it to stdout. The queue is unbounded on purpose: a slow stdout costs memory, never a
lost line or a blocked event loop. `LogPipeline.close()` drains it at shutdown.
gunicorn's and uvicorn's loggers forward to the root handler, so their lines are JSON too.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

FRAMEWORK_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn")


class TraceContextFilter(logging.Filter):
    """Adds trace_id and span_id to a record while a recording span is current (never zeros)."""

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span()
        if span.is_recording():
            context = span.get_span_context()
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class _EnqueueAsIs(logging.handlers.QueueHandler):
    """A QueueHandler that skips the per-record copy and pre-formatting; exc_info is kept."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class ForwardToRoot(logging.Handler):
    """Hands records of loggers that do not propagate (gunicorn's, uvicorn's) to the root."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


def json_formatter() -> logging.Formatter:
    """The one formatter: RFC 3339 UTC timestamp, level, logger, message, then extra fields."""
    return OrjsonFormatter(
        "{message}{levelname}{name}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
        # uvicorn attaches a copy of some messages with terminal colour codes: not for JSON.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )


@dataclass
class LogPipeline:
    """The process's logging setup; `close()` flushes every queued line."""

    listener: logging.handlers.QueueListener | None = None

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()


def configure_logging(level: str, *, asynchronous: bool) -> LogPipeline:
    """Route every logger to one JSON handler on stdout (through a queue when `asynchronous`)."""
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
        records: queue.SimpleQueue[Any] = queue.SimpleQueue()
        target = _EnqueueAsIs(records)
        pipeline.listener = logging.handlers.QueueListener(records, stream)
        pipeline.listener.start()
    target.addFilter(TraceContextFilter())
    root.addHandler(target)
    root.setLevel(level)
    for name in FRAMEWORK_LOGGERS:
        framework = logging.getLogger(name)
        framework.handlers = [ForwardToRoot()]
        framework.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the middleware writes access lines
    return pipeline
