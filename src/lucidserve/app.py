"""create_app(settings): wires the service once; the request's path starts here.

middleware (request id, timing, metrics, access log) -> route -> schema -> inference queue ->
predictor -> response. The card is read at once (it shapes the schemas and /docs); the estimator
warms up (and, in a process that was not handed a loaded bundle, loads) in the background, and
/readyz answers 200 only after that.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from opentelemetry import trace
from starlette.middleware.cors import CORSMiddleware

from lucidserve import __version__
from lucidserve.api.documentation import install_documentation
from lucidserve.api.drift import drift_router
from lucidserve.api.errors import install_error_handlers
from lucidserve.api.health import health_router
from lucidserve.api.inference_protocol import inference_protocol_router
from lucidserve.api.model import model_router
from lucidserve.api.pages import model_page_router
from lucidserve.api.predict import predict_router
from lucidserve.api.security import ApiKeys, api_key_dependencies
from lucidserve.bundle.schema import build_schemas
from lucidserve.bundle.store import Bundle, load_bundle_logged, read_card
from lucidserve.inference.batcher import InferenceQueue
from lucidserve.inference.predictor import Predictor
from lucidserve.observability.logging import LogPipeline
from lucidserve.observability.middleware import RequestObservabilityMiddleware
from lucidserve.observability.recording import build_observability
from lucidserve.observability.tracing import EdgeSampledApp, create_tracing
from lucidserve.runtime import Runtime
from lucidserve.server import multiprocess
from lucidserve.settings import Settings

logger = logging.getLogger("lucidserve")


def create_app(
    settings: Settings | None = None,
    *,
    started_at: float | None = None,
    bundle: Bundle | None = None,
    log_pipeline: LogPipeline | None = None,
) -> FastAPI:
    """The ASGI application for the bundle in `settings.model_dir`.

    `started_at` is when the server started (gunicorn's master, for every worker it forks): the
    model page's request rates count from there. By default, now. `log_pipeline` is the
    process's JSON logging (observability/logging.py); without one, the request's lines are
    ordinary log records. `bundle` is the bundle already loaded (by gunicorn's master, before
    forking this worker); without it, this process loads it.
    """
    settings = settings or Settings()
    started_at = time.time() if started_at is None else started_at
    card = (
        bundle.card
        if bundle is not None
        else read_card(settings.model_dir, expected_sha256=settings.bundle_sha256)
    )
    schemas = build_schemas(
        card, max_batch_rows=settings.max_batch_rows, max_text_length=settings.max_text_length
    )
    observability = build_observability(
        settings,
        card,
        shared_directory=multiprocess.shared_directory(),
        events=log_pipeline.write_event if log_pipeline is not None else None,
    )
    if log_pipeline is not None:
        log_pipeline.count_drops(observability.count_log_drop)
    exposition = observability.exposition
    runtime = Runtime(
        settings=settings,
        card=card,
        schemas=schemas,
        observability=observability,
        api_keys=ApiKeys.from_settings(settings),
    )
    tracing = create_tracing(card.name, card.version)
    provider = tracing.provider
    if provider is not None:
        trace.set_tracer_provider(provider)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(_load_model(runtime, bundle))
        yield
        runtime.draining = True
        runtime.set_ready_gauge()
        loading.cancel()
        if runtime.queue is not None:
            await runtime.queue.stop()
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)

    app = EdgeSampledApp(
        title=f"lucidserve: {card.name} {card.version}",
        version=__version__,
        description=card.description or "Predictions from a scikit-learn model.",
        lifespan=lifespan,
        # The documentation routes are added below, with local assets and the API key guards.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry={
            "tracer_provider": provider,
            "tracing": provider is not None,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
    )
    app.skip_tracing = tracing.skip_request
    app.state.runtime = runtime
    # What the metrics port serves when this process is the only one (server/metrics_server.py).
    app.state.exposition = exposition
    install_error_handlers(app)
    guards = api_key_dependencies(runtime.api_keys)
    app.include_router(predict_router(runtime, guards))
    app.include_router(inference_protocol_router(runtime, guards))
    app.include_router(model_router(runtime, guards))
    app.include_router(drift_router(runtime.drift, guards))
    app.include_router(health_router(runtime, exposition))
    app.include_router(model_page_router(runtime, exposition, guards, started_at=started_at))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Server-Timing"],
        )
    app.add_middleware(RequestObservabilityMiddleware, observability=observability)
    _document_request_schema(app, schemas.openapi_components)
    if settings.docs_enabled:
        install_documentation(app, app.openapi, guards)
    return app


async def _load_model(runtime: Runtime, bundle: Bundle | None) -> None:
    """Load the estimator (unless given) off the event loop, warm it up, then open the queue."""
    settings, card = runtime.settings, runtime.card
    try:
        if bundle is None:
            bundle = await asyncio.to_thread(
                load_bundle_logged, settings.model_dir, settings.trust_policy()
            )
        example = [{f.name: f.example for f in card.features}]
        await asyncio.to_thread(Predictor(card, bundle.estimator).predict, example)
    except Exception:
        logger.exception("model failed to load", extra={"event": "model_load_failed"})
        # End this worker (server/worker.py turns it into gunicorn's boot error): a worker that
        # cannot serve must not stay up answering 503 while its pod looks alive.
        runtime.load_failed = True
        signal.raise_signal(signal.SIGTERM)
        return
    observability = runtime.observability
    predictor = Predictor(card, bundle.estimator, observability.record_drift)
    queue = InferenceQueue(
        predictor,
        observability,
        batching=settings.batching,
        max_rows=settings.batch_max_rows,
        max_wait_seconds=settings.batch_max_wait_ms / 1000.0,
        queue_max_rows=settings.queue_max_rows,
        stall_seconds=settings.inference_stall_seconds,
    )
    queue.start()
    # Everything loaded so far (the model, sklearn, scipy) lives as long as the worker: move it out
    # of the cyclic collector's sight, or each full collection walks it again (about 100 ms, every
    # half second under load, pausing every request in flight).
    gc.collect()
    gc.freeze()
    runtime.queue = queue
    observability.model_loaded()
    runtime.set_ready_gauge()
    logger.info(
        "model ready",
        extra={
            "event": "model_ready",
            "pid": os.getpid(),
            "model_name": card.name,
            "model_version": card.version,
        },
    )


def _document_request_schema(app: FastAPI, components: dict[str, Any]) -> None:
    """Add the card-generated request schemas to the OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
