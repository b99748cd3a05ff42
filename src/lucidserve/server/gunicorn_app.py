"""`lucidserve serve`: gunicorn managing uvicorn workers, configured from Settings.

The master holds the loaded bundle (cli.py loads and checks it once) and the imported app code,
freezes its heap and forks: every worker, a restarted one too, serves the master's estimator
without reading the bundle again (prefork.py). Each worker builds its own app after the fork: the
tracer provider, the log writer thread and the inference thread must not cross a fork. Under
gunicorn the metrics always live in the multiprocess files, whatever the worker count, and the
metrics process serves them on the metrics port (metrics_process.py, metrics_server.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger

from lucidserve.bundle.store import Bundle
from lucidserve.observability.logging import ForwardToRoot, LogPipeline, configure_logging
from lucidserve.server import multiprocess, prefork
from lucidserve.server.metrics_process import MetricsProcess
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

    def __init__(
        self,
        settings: Settings,
        workers: int,
        bundle: Bundle,
        metrics_process: MetricsProcess | None,
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.bundle = bundle
        self.metrics_process = metrics_process
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
            "pre_fork": _pre_fork,
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

        return create_app(
            self.settings,
            started_at=self.started_at,
            bundle=self.bundle,
            log_pipeline=self.log_pipeline,
        )

    def run(self) -> None:
        try:
            _LucidArbiter(self).run()
        except RuntimeError as exc:  # what gunicorn's own run() does with a configuration error
            print(f"\nError: {exc}\n", file=sys.stderr)
            sys.exit(1)

    def _post_fork(self, server: Any, worker: Any) -> None:
        if self.metrics_process is not None:
            self.metrics_process.close_inherited()
        prefork.restore_thread_pools()
        self.log_pipeline = configure_logging(
            self.settings.log_level,
            asynchronous=True,
            max_queued_lines=self.settings.log_queue_max_lines,
        )

    def _worker_exit(self, server: Any, worker: Any) -> None:
        logging.getLogger("lucidserve").info("worker exiting", extra={"event": "worker_exit"})
        if self.log_pipeline is not None:
            self.log_pipeline.close()


class _LucidArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's arbiter, also watching and stopping the metrics process."""

    def manage_workers(self) -> None:
        if self.app.metrics_process is not None:
            self.app.metrics_process.keep_alive()
        super().manage_workers()

    def stop(self, graceful: bool = True) -> None:
        super().stop(graceful)
        if self.app.metrics_process is not None:
            self.app.metrics_process.stop()


def _pre_fork(server: Any, worker: Any) -> None:
    # Right before each fork: whatever the master allocated since the last one is frozen too.
    prefork.freeze_heap()


def _child_exit(server: Any, worker: Any) -> None:
    multiprocess.worker_exited(worker.pid)


def run(settings: Settings, bundle: Bundle) -> int:
    """Serve `bundle` until a shutdown signal; 0 after a graceful drain, 1 if the metrics port
    cannot be bound."""
    workers = settings.effective_workers()
    # Before the app's modules (and prometheus_client) are imported below: they read it at import.
    directory = multiprocess.prepare(settings.multiproc_dir)
    master = os.getpid()
    metrics_process = None
    try:
        if settings.metrics_enabled:
            metrics_process = MetricsProcess(
                settings.host, settings.metrics_port, settings.model_dir, directory
            )
            try:
                metrics_process.bind()
            except OSError as exc:
                logging.getLogger("lucidserve").error(
                    "cannot serve metrics on port %s: %s",
                    settings.metrics_port,
                    exc,
                    extra={"event": "metrics_port_unavailable"},
                )
                return 1
            # Now: its imports (scipy, for the drift p-values) take a while, and it boots while
            # the app's code is imported and the workers warm up.
            metrics_process.start()
        # Import the app's code once, here, so that workers share it too and start sooner.
        import lucidserve.app  # noqa: F401

        prefork.freeze_heap()
        LucidServeApplication(settings, workers, bundle, metrics_process).run()
    finally:
        # A worker leaves through here too (gunicorn ends it with sys.exit, whose SystemExit climbs
        # the stack it inherited from the fork): only the master may clean up.
        if os.getpid() == master:
            if metrics_process is not None:
                metrics_process.stop()  # already stopped after the workers, unless gunicorn failed
            if settings.multiproc_dir is None:
                shutil.rmtree(directory, ignore_errors=True)
    return 0
