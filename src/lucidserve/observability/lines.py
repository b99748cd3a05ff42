"""One definition of a JSON log line, and the fast path that writes the hot path's lines.

Every line (a prediction, an access, an event, any library's log record) has one layout:

    message, level, logger, <the line's own fields>, trace_id, span_id, timestamp

with trace_id and span_id only while a recording span is current, and the timestamp in RFC 3339,
UTC. python-json-logger's orjson formatter (`json_formatter()`) is the reference: it formats every
`logging` record. The hot path writes two lines per request, and a `LogRecord` plus the formatter
cost about 40 µs of the single core a worker has, so `EventLogger` builds the line's dict itself
(`Event`) and hands it to the log pipeline, whose writer serializes it with the same formatter's
`serialize_log_record`. tests/test_events.py checks that an event and the equivalent log record
give exactly the same bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS, BaseJsonFormatter
from pythonjsonlogger.orjson import OrjsonFormatter

# The leading fields of every line: LogRecord attribute -> the line's key, in line order.
LEADING_FIELDS = {"message": "message", "levelname": "level", "name": "logger"}
_LEVEL_NAMES = {level: logging.getLevelName(level) for level in range(0, 60, 10)}


def json_formatter() -> BaseJsonFormatter:
    """The reference formatter: the leading fields, the record's extra fields, the timestamp."""
    return OrjsonFormatter(
        "".join(f"{{{attribute}}}" for attribute in LEADING_FIELDS),
        style="{",
        rename_fields={a: key for a, key in LEADING_FIELDS.items() if a != key},
        timestamp=True,
        # uvicorn attaches a copy of some messages with terminal colour codes: not for JSON.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )


class Event:
    """A line built without a LogRecord: its fields (leading ones first) and creation time."""

    __slots__ = ("created", "fields")

    def __init__(self, fields: dict[str, Any], created: float) -> None:
        self.fields = fields
        self.created = created

    def render(self, formatter: BaseJsonFormatter) -> str:
        """The line, as `formatter` writes a record with these fields created at that time."""
        fields = self.fields
        fields["timestamp"] = datetime.fromtimestamp(self.created, UTC)
        return formatter.serialize_log_record(formatter.process_log_record(fields))


class QueuedRecord:
    """A `logging` record waiting for the writer, rendered by the reference formatter."""

    __slots__ = ("record",)

    def __init__(self, record: logging.LogRecord) -> None:
        self.record = record

    def render(self, formatter: BaseJsonFormatter) -> str:
        return formatter.format(self.record)


EventSink = Callable[[Event], object]
"""Where events go: the log pipeline's queue (logging.py)."""


class EventLogger:
    """Writes one line per `emit` under a logger's name and level.

    Levels still apply: a logger disabled, or set above the event's level, writes nothing.
    Without a sink (no JSON pipeline in the process: a library user, a test) events are
    ordinary log records, so nothing is lost and `logging` handlers see them.
    """

    def __init__(self, name: str, sink: EventSink | None) -> None:
        self.name = name
        self._logger = logging.getLogger(name)
        self._sink: EventSink = sink or _unreachable
        self.emit: Callable[[int, str, dict[str, Any]], None] = (
            self._to_sink if sink is not None else self._to_logging
        )

    def enabled(self, level: int = logging.INFO) -> bool:
        return self._logger.isEnabledFor(level)

    def _to_sink(self, level: int, message: str, fields: dict[str, Any]) -> None:
        """One line: `message` and `fields` (their order kept), at `level`."""
        if not self._logger.isEnabledFor(level):
            return
        level_name = _LEVEL_NAMES.get(level) or logging.getLevelName(level)
        line = {"message": message, "level": level_name, "logger": self.name, **fields}
        add_trace_ids(line)
        self._sink(Event(line, time.time()))

    def _to_logging(self, level: int, message: str, fields: dict[str, Any]) -> None:
        self._logger.log(level, message, extra=fields)


def _unreachable(event: Event) -> None:
    raise AssertionError("an EventLogger without a sink writes through logging")


def add_trace_ids(fields: dict[str, Any]) -> None:
    """Add trace_id and span_id while a recording span is current (never zeros)."""
    span = trace.get_current_span()
    if span.is_recording():
        context = span.get_span_context()
        fields["trace_id"] = format(context.trace_id, "032x")
        fields["span_id"] = format(context.span_id, "016x")


def sampled_trace_id() -> str | None:
    """The current span's trace id when it is recording and sampled (an exemplar's link)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.trace_flags.sampled else None
