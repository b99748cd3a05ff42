"""Request middleware (pure ASGI): request id, Server-Timing, and the request recorded once.

One closure per request with an idempotent `finish()`: the duration (to the last body byte), the
route template and the status are recorded exactly once (`Observability.record_request`: the
metrics and the access line), whatever path the request takes. FastAPI's native OpenTelemetry
wraps this middleware, so the server span is current here: the access line and the histogram
exemplar carry its trace id.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

import orjson
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lucidserve.observability.recording import Observability

REQUEST_ID_KEY = "lucidserve.request_id"
STARTED_KEY = "lucidserve.started"
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_CLIENT_CLOSED = 499  # nginx's convention for a request the client abandoned
error_logger = logging.getLogger("lucidserve.error")


class RequestObservabilityMiddleware:
    """Wraps the application; see the module docstring."""

    def __init__(self, app: ASGIApp, *, observability: Observability) -> None:
        self.app = app
        self.observability = observability
        self.request_ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope, self.request_ids)
        scope[REQUEST_ID_KEY] = request_id
        scope[STARTED_KEY] = started
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "_OTHER"
        observability = self.observability
        observability.request_started(method)
        status = 0
        response_started = False
        disconnected = False
        finished = False

        def finish() -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            seconds = time.perf_counter() - started
            final = status or (_CLIENT_CLOSED if disconnected else 500)
            route = _route_template(scope)
            observability.record_request(scope, method, route, final, seconds, request_id)

        async def send_observed(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                elapsed_ms = (time.perf_counter() - started) * 1000.0
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.append((b"server-timing", f"app;dur={elapsed_ms:.3f}".encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Record before the last chunk goes out: the server span ends as it is sent, and
                # the server only buffers the bytes, so the duration is the same.
                finish()
            await send(message)

        async def receive_observed() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        try:
            await self.app(scope, receive_observed, send_observed)
        except Exception as exc:
            _record_on_span(exc)
            error_logger.exception(
                "unhandled error", extra={"event": "error", "request_id": request_id}
            )
            if not response_started and not disconnected:
                await _send_internal_error(send_observed, request_id)
        finally:
            finish()


class RequestIds:
    """New request ids: 64 random bits fixed per process, then a counter (32 hex characters).

    Unique across processes and restarts like a UUID4, without a system call per request.
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next_id(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


def _request_id(scope: Scope, ids: RequestIds) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SANE_REQUEST_ID.match(value):
            return str(value.decode("latin-1"))
    return ids.next_id()


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) if route is not None else None
    return template if isinstance(template, str) else "unmatched"


def _record_on_span(exc: Exception) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(exc)
        span.set_status(trace.StatusCode.ERROR, type(exc).__name__)


async def _send_internal_error(send: Send, request_id: str) -> None:
    body = orjson.dumps(
        {
            "error": {
                "type": "internal_error",
                "message": "The server failed to handle this request.",
                "details": None,
            },
            "request_id": request_id,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
