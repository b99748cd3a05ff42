"""The `--reload` development server's app factory (imported by uvicorn's reloader child)."""

from __future__ import annotations

from fastapi import FastAPI

from lucidserve.app import create_app
from lucidserve.observability.logging import configure_logging
from lucidserve.server.metrics_server import serve_in_thread
from lucidserve.settings import Settings


def create_dev_app() -> FastAPI:
    """The app from environment settings, with JSON logging set up in this process, and the
    metrics port served by this process (it is the only one)."""
    settings = Settings()
    pipeline = configure_logging(settings.log_level, asynchronous=False)
    app = create_app(settings, log_pipeline=pipeline)
    if app.state.exposition is not None:
        serve_in_thread(app.state.exposition, settings.host, settings.metrics_port)
    return app
