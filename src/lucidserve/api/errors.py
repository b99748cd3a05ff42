"""One JSON error envelope for every failure: {"error": {type, message, details}, "request_id"}."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from lucidserve.observability.middleware import REQUEST_ID_KEY

MAX_DETAILS = 20
QUOTE_LIMIT = 80
_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
    504: "deadline_exceeded",
}


class ApiError(Exception):
    """An error with its HTTP status, a stable type string, a message and optional details."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.details = details
        self.headers = headers


class ErrorBody(BaseModel):
    """What went wrong."""

    type: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody
    request_id: str


PROTOCOL_PREFIX = "/v2"
"""The Open Inference Protocol's routes (api/inference_protocol.py): errors as {"error": msg}."""


class ProtocolErrorResponse(BaseModel):
    """The body of every Open Inference Protocol error."""

    error: str


def error_response(request: Request, error: ApiError) -> Response:
    # The protocol's routes only: an unknown path under /v2 keeps the service's own envelope.
    route = request.scope.get("route")
    path: str = getattr(route, "path_format", "") if route is not None else ""
    if path == PROTOCOL_PREFIX or path.startswith(PROTOCOL_PREFIX + "/"):
        return Response(
            orjson.dumps({"error": error.message}),
            status_code=error.status,
            media_type="application/json",
            headers=error.headers,
        )
    body = {
        "error": {"type": error.error_type, "message": error.message, "details": error.details},
        "request_id": request.scope.get(REQUEST_ID_KEY, ""),
    }
    return Response(
        orjson.dumps(body, default=str),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


def validation_error(errors: Sequence[Mapping[str, Any]], total: int | None = None) -> ApiError:
    """A 422 listing at most MAX_DETAILS problems, each with its field path; `total` counts all.

    Field names and messages quoted back are cut to a few dozen characters, so the answer stays
    small whatever the body held (a field name can be as long as the body).
    """
    total = len(errors) if total is None else total
    details = [_detail(e) for e in errors[:MAX_DETAILS]]
    malformed = any(d["type"] == "json_invalid" for d in details)
    message = "The request body is not valid JSON." if malformed else "The request is invalid."
    if total > len(details):
        message += f" {total} problems; the first {len(details)} are listed."
    return ApiError(422, "validation_error", message, details)


def _detail(error: Mapping[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "loc": [part if isinstance(part, int) else _quoted(str(part)) for part in error["loc"]],
        "type": error["type"],
        "msg": _quoted(error["msg"]),
    }
    context = error.get("ctx")
    if context:
        detail["ctx"] = {
            key: value if isinstance(value, int | float | bool) else _quoted(str(value))
            for key, value in context.items()
        }
    return detail


def _quoted(text: str) -> str:
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 1] + "…"


def install_error_handlers(app: FastAPI) -> None:
    """Route FastAPI's and Starlette's errors, and ours, through the one envelope."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, validation_error(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error = ApiError(
            exc.status_code,
            _HTTP_TYPES.get(exc.status_code, "http_error"),
            _http_message(request, exc),
            headers=dict(exc.headers) if exc.headers else None,
        )
        return error_response(request, error)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def _http_message(request: Request, exc: StarletteHTTPException) -> str:
    if exc.status_code == 404:
        return f"No route matches {request.url.path}."
    if exc.status_code == 405:
        return f"Method {request.method} is not allowed on {request.url.path}."
    return str(exc.detail)
