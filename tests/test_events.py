"""Event lines: exactly the bytes of the reference formatter's line, levels honoured, nothing
dropped."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from lucidserve.observability.lines import Event, EventLogger, json_formatter
from lucidserve.observability.logging import TraceContextFilter

FIELDS: dict[str, Any] = {
    "event": "prediction",
    "request_id": "3f2a",
    "model_name": "iris",
    "input_hash": "ab" * 32,
    "label": "setosa",
    "probability": 0.9731,
    "latency_ms": 1.25,
    "inputs": {"sepal_length": 5.1, "note": None, "text": 'naïve "quoted"\n'},
    "count": 3,
}


def reference_line(
    name: str, level: int, message: str, fields: dict[str, Any], created: float
) -> str:
    """What python-json-logger's formatter writes for the equivalent log record."""
    record = logging.getLogger(name).makeRecord(name, level, __file__, 1, message, (), None, None,
                                                 dict(fields))  # fmt: skip
    record.created = created
    TraceContextFilter().filter(record)
    return json_formatter().format(record)


def test_an_event_is_byte_for_byte_the_reference_formatters_line() -> None:
    logging.getLogger("test.events.bytes").setLevel(logging.INFO)
    sunk: list[Event] = []
    EventLogger("test.events.bytes", sunk.append).emit(logging.INFO, "prediction", dict(FIELDS))
    (event,) = sunk
    expected = reference_line(
        "test.events.bytes", logging.INFO, "prediction", FIELDS, event.created
    )
    assert event.render(json_formatter()) == expected


def test_with_a_span_the_event_and_the_reference_line_are_the_same_bytes() -> None:
    logging.getLogger("test.events.bytes.span").setLevel(logging.INFO)
    sunk: list[Event] = []
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request"):
        EventLogger("test.events.bytes.span", sunk.append).emit(
            logging.ERROR, "request", dict(FIELDS)
        )
        expected = reference_line(
            "test.events.bytes.span", logging.ERROR, "request", FIELDS, sunk[0].created
        )
    assert sunk[0].render(json_formatter()) == expected
    assert '"trace_id"' in expected


def test_an_event_renders_as_a_json_log_line() -> None:
    logging.getLogger("test.events.shape").setLevel(logging.INFO)
    sunk: list[Event] = []
    EventLogger("test.events.shape", sunk.append).emit(
        logging.INFO, "prediction", {"label": "a", "n": 1.5}
    )
    line = json.loads(sunk[0].render(json_formatter()))
    assert list(line) == ["message", "level", "logger", "label", "n", "timestamp"]
    assert line["message"] == "prediction"
    assert line["level"] == "INFO"
    assert line["logger"] == "test.events.shape"
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None


def test_levels_below_the_loggers_level_write_nothing() -> None:
    logging.getLogger("test.events.level").setLevel(logging.WARNING)
    sunk: list[Event] = []
    log = EventLogger("test.events.level", sunk.append)
    log.emit(logging.INFO, "quiet", {})
    log.emit(logging.ERROR, "loud", {})
    assert [event.fields["message"] for event in sunk] == ["loud"]
    assert sunk[0].fields["level"] == "ERROR"
    assert not log.enabled(logging.INFO)


def test_a_recording_span_adds_its_trace_and_span_ids() -> None:
    logging.getLogger("test.events.trace").setLevel(logging.INFO)
    sunk: list[Event] = []
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        EventLogger("test.events.trace", sunk.append).emit(logging.INFO, "prediction", {})
    context = span.get_span_context()
    assert sunk[0].fields["trace_id"] == format(context.trace_id, "032x")
    assert sunk[0].fields["span_id"] == format(context.span_id, "016x")


def test_without_a_pipeline_events_are_ordinary_log_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="test.events.fallback"):
        EventLogger("test.events.fallback", None).emit(logging.INFO, "prediction", {"label": "b"})
    (record,) = caplog.records
    assert record.getMessage() == "prediction"
    assert record.__dict__["label"] == "b"
