"""Event lines (a prediction, an access) written without a LogRecord, in a few microseconds.

The hot path writes two lines per request. Through `logging` each costs a LogRecord, a handler
filter, a queue hand-off and python-json-logger's formatting on the writer thread: about 40 µs of
the single core a worker has. An `EventLogger` builds the line's dict itself, with the fields every
other JSON line carries (message, level, logger, trace_id and span_id while a recording span is
current), and hands it with its creation time to the log pipeline (logging.py), whose writer thread
adds the timestamp and serializes it with the same python-json-logger formatter (orjson) as every
other line, in the same stream and in order with them.

Levels still apply: a logger disabled, or set above the event's level, writes nothing. Until the
JSON pipeline is configured in the process (a library user, a test), events are ordinary log
records, so nothing is lost and `logging` handlers see them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.core import BaseJsonFormatter

Event = tuple[dict[str, Any], float]
"""A line's fields and its creation time (seconds since the epoch)."""

_sink: Callable[[Event], object] | None = None
_LEVEL_NAMES = {level: logging.getLevelName(level) for level in range(0, 60, 10)}


def install_sink(sink: Callable[[Event], object] | None) -> None:
    """Send events to `sink` (the log pipeline's), or back through `logging` when None."""
    global _sink
    _sink = sink


def render(event: Event, formatter: BaseJsonFormatter) -> str:
    """The JSON line of an event, by `formatter`: its fields, then the UTC timestamp that the
    formatter gives log records."""
    fields, created = event
    fields["timestamp"] = datetime.fromtimestamp(created, UTC)
    return formatter.serialize_log_record(fields)


class EventLogger:
    """Writes one event per call under a logger's name and level."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger = logging.getLogger(name)

    def enabled(self, level: int = logging.INFO) -> bool:
        return self._logger.isEnabledFor(level)

    def emit(self, level: int, message: str, fields: dict[str, Any]) -> None:
        """One line: `message` and `fields` (their order kept), at `level`."""
        if not self._logger.isEnabledFor(level):
            return
        sink = _sink
        if sink is None:
            self._logger.log(level, message, extra=fields)
            return
        level_name = _LEVEL_NAMES.get(level) or logging.getLevelName(level)
        line = {"message": message, "level": level_name, "logger": self.name, **fields}
        add_trace_ids(line)
        sink((line, time.time()))


def add_trace_ids(fields: dict[str, Any]) -> None:
    """Add trace_id and span_id while a recording span is current (never zeros)."""
    span = trace.get_current_span()
    if span.is_recording():
        context = span.get_span_context()
        fields["trace_id"] = format(context.trace_id, "032x")
        fields["span_id"] = format(context.span_id, "016x")
