"""The `--reload` development server's app factory (imported by uvicorn's reloader child)."""

from __future__ import annotations

from fastapi import FastAPI

from lucidserve.app import create_app
from lucidserve.observability.logging import configure_logging
from lucidserve.settings import Settings


def create_dev_app() -> FastAPI:
    """The app from environment settings, with JSON logging set up in this process."""
    settings = Settings()
    pipeline = configure_logging(settings.log_level, asynchronous=False)
    return create_app(settings, log_pipeline=pipeline)
