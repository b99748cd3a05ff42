"""GET /: the model page for people, built from what /v1/model, /v1/drift and /metrics serve.

The drift part is `DriftMonitor.summary()` (the window pooled over all workers) and the traffic part
is read from the same registry /metrics exposes (in multiprocess mode every worker's files merged),
so any worker answers with the same page. A built page is kept for `cache_seconds`: reloading it,
or several people looking at it, costs one build per worker in that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter
from prometheus_client.registry import CollectorRegistry
from starlette.responses import Response

from lucidserve.observability.traffic import summarise_traffic
from lucidserve.pages.model_page import ModelPage, render_model_page
from lucidserve.runtime import Runtime

CACHE_SECONDS = 5.0


def model_page_router(
    runtime: Runtime,
    exposition: CollectorRegistry | None,
    guards: Sequence[Any],
    *,
    started_at: float,
    cache_seconds: float = CACHE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    """The `/` route; `started_at` is when the server (its master process) started."""
    router = APIRouter(dependencies=guards)
    build = model_page_builder(runtime, exposition, started_at, cache_seconds, clock)
    cache = CachedPage(build, cache_seconds, time.monotonic)

    @router.get("/", include_in_schema=False)
    def model_page() -> Response:
        # A plain `def`: reading the pooled files runs in the thread pool, off the event loop.
        return Response(
            cache.get(),
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": f"private, max-age={int(cache_seconds)}"},
        )

    return router


def model_page_builder(
    runtime: Runtime,
    exposition: CollectorRegistry | None,
    started_at: float,
    cache_seconds: float,
    clock: Callable[[], float] = time.time,
) -> Callable[[], bytes]:
    """A function building the page's bytes from the current pooled drift and traffic."""
    links = [("/v1/model", "Model card (JSON)")]
    if runtime.settings.docs_enabled:
        links[:0] = [("/docs", "API documentation"), ("/redoc", "API reference (ReDoc)")]
    if runtime.drift is not None:
        links.append(("/v1/drift", "Drift statistics (JSON)"))
    if exposition is not None and runtime.settings.metrics_on_app_port:
        links.append(("/metrics", "Prometheus metrics"))

    def build() -> bytes:
        now = clock()
        drift = runtime.drift.summary() if runtime.drift is not None else None
        traffic = (
            summarise_traffic(exposition.collect(), now - started_at)
            if exposition is not None
            else None
        )
        page = ModelPage(runtime.card, drift, traffic, links, now, cache_seconds)
        return render_model_page(page).encode()

    return build


class CachedPage:
    """The result of `build`, rebuilt when older than `seconds`; one build at a time."""

    def __init__(
        self, build: Callable[[], bytes], seconds: float, clock: Callable[[], float]
    ) -> None:
        self._build, self._seconds, self._clock = build, seconds, clock
        self._lock = threading.Lock()
        self._body = b""
        self._expires = float("-inf")

    def get(self) -> bytes:
        with self._lock:
            if self._clock() >= self._expires:
                self._body = self._build()
                self._expires = self._clock() + self._seconds
            return self._body
