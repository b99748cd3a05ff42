"""Event lines: the same JSON shape as every other log line, levels honoured, nothing dropped."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from opentelemetry.sdk.trace import TracerProvider

from lucidserve.observability import events
from lucidserve.observability.events import Event, EventLogger
from lucidserve.observability.logging import json_formatter


@pytest.fixture
def sunk() -> Iterator[list[Event]]:
    captured: list[Event] = []
    events.install_sink(captured.append)
    yield captured
    events.install_sink(None)


def test_an_event_renders_as_a_json_log_line(sunk: list[Event]) -> None:
    logging.getLogger("test.events.shape").setLevel(logging.INFO)
    EventLogger("test.events.shape").emit(logging.INFO, "prediction", {"label": "a", "n": 1.5})
    line = json.loads(events.render(sunk[0], json_formatter()))
    assert list(line)[:5] == ["message", "level", "logger", "label", "n"]
    assert line["message"] == "prediction"
    assert line["level"] == "INFO"
    assert line["logger"] == "test.events.shape"
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None
    assert "trace_id" not in line


def test_levels_below_the_loggers_level_write_nothing(sunk: list[Event]) -> None:
    logging.getLogger("test.events.level").setLevel(logging.WARNING)
    log = EventLogger("test.events.level")
    log.emit(logging.INFO, "quiet", {})
    log.emit(logging.ERROR, "loud", {})
    assert [event[0]["message"] for event in sunk] == ["loud"]
    assert sunk[0][0]["level"] == "ERROR"
    assert not log.enabled(logging.INFO)


def test_a_recording_span_adds_its_trace_and_span_ids(sunk: list[Event]) -> None:
    logging.getLogger("test.events.trace").setLevel(logging.INFO)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        EventLogger("test.events.trace").emit(logging.INFO, "prediction", {})
    context = span.get_span_context()
    assert sunk[0][0]["trace_id"] == format(context.trace_id, "032x")
    assert sunk[0][0]["span_id"] == format(context.span_id, "016x")


def test_without_a_pipeline_events_are_ordinary_log_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events.install_sink(None)
    with caplog.at_level(logging.INFO, logger="test.events.fallback"):
        EventLogger("test.events.fallback").emit(logging.INFO, "prediction", {"label": "b"})
    (record,) = caplog.records
    assert record.getMessage() == "prediction"
    assert record.__dict__["label"] == "b"
