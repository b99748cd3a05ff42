"""The gunicorn worker: uvicorn with uvloop and httptools, and readiness that drops on SIGTERM."""

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

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        app = self.wsgi
        server = _DrainingServer(config=self.config, on_exit=lambda: _begin_drain(app))
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            raise SystemExit(self.arbiter_boot_error())

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


def _begin_drain(app: Any) -> None:
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    if runtime is not None:
        runtime.draining = True
        runtime.set_ready_gauge()
