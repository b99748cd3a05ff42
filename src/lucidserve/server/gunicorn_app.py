"""`lucidserve serve`: gunicorn managing uvicorn workers, configured from Settings.

Each worker builds its own app after fork (no preload): the tracer provider, the log listener
thread and the inference thread must not cross a fork.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from lucidserve.observability.logging import ForwardToRoot, LogPipeline, configure_logging
from lucidserve.server import multiprocess
from lucidserve.settings import Settings


class JsonGunicornLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, forwarding to the root JSON handler; its access log is off."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.handlers = [ForwardToRoot()]
        self.error_log.propagate = False
        self.access_log.handlers = []
        self.access_log.disabled = True


class LucidServeApplication(BaseApplication):  # type: ignore[misc]
    """A gunicorn application whose configuration comes from Settings, not a config file."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        # Set in the master, so every worker (a restarted one too) counts rates from here.
        self.started_at = time.time()
        # This worker's logging, set up after the fork (this object is the worker's own copy).
        self.log_pipeline: LogPipeline | None = None
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options: dict[str, Any] = {
            "bind": [f"{s.host}:{s.port}"],
            "workers": self.workers,
            "worker_class": "lucidserve.server.worker.LucidWorker",
            "graceful_timeout": s.graceful_timeout,
            "timeout": s.timeout,
            "keepalive": s.keepalive,
            "control_socket_disable": True,
            "logger_class": JsonGunicornLogger,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": s.log_level.lower(),
            "post_fork": self._post_fork,
            "worker_connections": s.max_connections,
            "worker_exit": self._worker_exit,
            "child_exit": _child_exit,
        }
        if s.worker_tmp_dir is not None:
            options["worker_tmp_dir"] = str(s.worker_tmp_dir)
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from lucidserve.app import create_app

        return create_app(self.settings, started_at=self.started_at, log_pipeline=self.log_pipeline)

    def _post_fork(self, server: Any, worker: Any) -> None:
        self.log_pipeline = configure_logging(
            self.settings.log_level,
            asynchronous=True,
            max_queued_lines=self.settings.log_queue_max_lines,
        )

    def _worker_exit(self, server: Any, worker: Any) -> None:
        logging.getLogger("lucidserve").info("worker exiting", extra={"event": "worker_exit"})
        if self.log_pipeline is not None:
            self.log_pipeline.close()


def _child_exit(server: Any, worker: Any) -> None:
    multiprocess.worker_exited(worker.pid)


def run(settings: Settings) -> None:
    """Serve until a shutdown signal; the process exits 0 after a graceful drain."""
    workers = settings.effective_workers()
    if workers == 1:
        multiprocess.disable()
        LucidServeApplication(settings, workers).run()
        return
    directory = multiprocess.prepare(settings.multiproc_dir)
    try:
        LucidServeApplication(settings, workers).run()
    finally:
        if settings.multiproc_dir is None:
            shutil.rmtree(directory, ignore_errors=True)
