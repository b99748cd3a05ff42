"""The gunicorn worker: uvicorn with uvloop and httptools, and readiness that drops on SIGTERM.

Two ways a worker tells gunicorn it is unwell: a model that fails to load or warm up ends the
worker with gunicorn's boot-error code (the arbiter stops, so the orchestrator sees the failure
instead of a pod that looks up and answers 503), and a stalled inference thread stops the worker's
heartbeat, so the arbiter replaces it after TIMEOUT seconds.
"""

from __future__ import annotations

from typing import Any

from uvicorn.server import Server
from uvicorn_worker import UvicornWorker


class LucidWorker(UvicornWorker):  # type: ignore[misc]
    """UvicornWorker that turns /readyz to 503 the moment a shutdown signal arrives."""

    CONFIG_KWARGS: dict[str, Any] = {  # noqa: RUF012 - the base class's own contract
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "server_header": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Connections and tasks beyond this are refused with 503 by uvicorn itself.
        self.config.limit_concurrency = self.cfg.worker_connections

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        app = self.wsgi
        server = _DrainingServer(config=self.config, on_exit=lambda: _begin_drain(app))
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        runtime = _runtime(app)
        if not server.started or (runtime is not None and runtime.load_failed):
            raise SystemExit(self.arbiter_boot_error())

    async def callback_notify(self) -> None:
        runtime = _runtime(self.wsgi)
        if runtime is not None and runtime.stalled:
            return  # no heartbeat: gunicorn replaces this worker after TIMEOUT seconds
        self.notify()

    @staticmethod
    def arbiter_boot_error() -> int:
        from gunicorn.arbiter import Arbiter

        return int(Arbiter.WORKER_BOOT_ERROR)


class _DrainingServer(Server):
    def __init__(self, config: Any, on_exit: Any) -> None:
        super().__init__(config=config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._on_exit()
        super().handle_exit(sig, frame)
        # uvicorn re-raises a captured signal once it has shut down; under gunicorn the worker's
        # handler is then the default one, which would kill the process before gunicorn's exit
        # path runs the worker_exit hook that flushes the log queue. Let gunicorn end it instead.
        self._captured_signals.clear()


def _runtime(app: Any) -> Any:
    return getattr(getattr(app, "state", None), "runtime", None)


def _begin_drain(app: Any) -> None:
    runtime = _runtime(app)
    if runtime is not None:
        runtime.draining = True
        runtime.set_ready_gauge()
