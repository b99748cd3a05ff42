"""Liveness, readiness and the Prometheus endpoint: never behind API keys."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry
from starlette.responses import Response

from lucidserve.runtime import Runtime


def health_router(runtime: Runtime, exposition: CollectorRegistry | None) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @router.get(
        "/readyz",
        summary="Readiness: model loaded and warmed up, not draining",
        responses={503: {"description": "Loading or draining"}},
    )
    async def readyz(request: Request) -> Response:
        runtime.require_ready()
        body = {"status": "ready", "model_name": runtime.card.name}
        return Response(orjson.dumps(body), media_type="application/json")

    @router.get("/metrics", summary="Prometheus metrics (OpenMetrics when asked for)")
    async def metrics(request: Request) -> Response:
        if exposition is None:
            return Response(b"", media_type="text/plain; version=0.0.4")
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(exposition), media_type=content_type)

    return router
