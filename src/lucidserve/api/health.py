"""Liveness, readiness and (with METRICS_ON_APP_PORT) the Prometheus endpoint: never behind API
keys. /metrics is served on the metrics port (server/metrics_server.py); here only on request."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from prometheus_client.exposition import CONTENT_TYPE_LATEST, choose_encoder
from prometheus_client.openmetrics.exposition import (
    CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE,
)
from prometheus_client.registry import CollectorRegistry
from starlette.responses import Response

from lucidserve.api.errors import ApiError, ErrorResponse
from lucidserve.runtime import Runtime


def health_router(runtime: Runtime, exposition: CollectorRegistry | None) -> APIRouter:
    router = APIRouter(tags=["operations"])
    unavailable = {"model": ErrorResponse}

    @router.get(
        "/healthz",
        summary="Liveness: the process answers and its inference thread is not stalled",
        responses={503: {**unavailable, "description": "Inference stalled: restart me"}},
    )
    async def healthz() -> Response:
        if runtime.stalled:
            raise ApiError(
                503,
                "stalled",
                "The inference thread has made no progress for "
                f"{runtime.settings.inference_stall_seconds:g} s with work waiting.",
            )
        return Response(b'{"status":"ok"}', media_type="application/json")

    @router.get(
        "/readyz",
        summary="Readiness: model loaded and warmed up, not draining",
        responses={503: {**unavailable, "description": "Loading or draining"}},
    )
    async def readyz(request: Request) -> Response:
        runtime.require_ready()
        body = {"status": "ready", "model_name": runtime.card.name}
        return Response(orjson.dumps(body), media_type="application/json")

    if runtime.settings.metrics_on_app_port:
        _add_metrics_route(router, exposition)
    return router


def _add_metrics_route(router: APIRouter, exposition: CollectorRegistry | None) -> None:
    @router.get(
        "/metrics",
        summary="Prometheus metrics (OpenMetrics, with exemplars, when asked for)",
        response_class=Response,
        responses={
            200: {
                "description": "The exposition, in the format the Accept header asks for.",
                "content": {
                    CONTENT_TYPE_LATEST: {"schema": {"type": "string"}},
                    OPENMETRICS_CONTENT_TYPE: {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def metrics(request: Request) -> Response:
        if exposition is None:
            return Response(b"", media_type=CONTENT_TYPE_LATEST)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(exposition), media_type=content_type)
