"""The gunicorn worker: uvicorn with uvloop and httptools, and readiness that drops on SIGTERM.

Two ways a worker tells gunicorn it is unwell: a model that fails to load or warm up ends the
worker with gunicorn's boot-error code (the arbiter stops, so the orchestrator sees the failure
instead of a pod that looks up and answers 503), and a stalled inference thread stops the worker's
heartbeat, so the arbiter replaces it after TIMEOUT seconds.

Only public names of gunicorn, uvicorn and uvicorn-worker are overridden (`Worker.run`,
`Server.serve`, `Server.capture_signals`, `Server.handle_exit`); tests/test_library_contracts.py
checks what this relies on, and names the library when an upgrade changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from uvicorn.server import HANDLED_SIGNALS, Server
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

    def run(self) -> None:
        """Serve until a shutdown signal; gunicorn calls this once the app is loaded."""
        self.config.app = app = self.wsgi
        server = _DrainingServer(
            config=self.config, on_exit=lambda: _begin_drain(app), on_quit=self.handle_exit
        )
        server.run(sockets=self.sockets)
        runtime = _runtime(app)
        if not server.started or (runtime is not None and runtime.load_failed):
            raise SystemExit(self.arbiter_boot_error())

    async def callback_notify(self) -> None:
        if os.getppid() != self.ppid:
            # The master is gone (killed, OOM): nobody will stop or replace this worker. Leave
            # the way a SIGTERM does, draining, as gunicorn's own workers do.
            self.log.info("Parent changed, shutting down: %s", self)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        runtime = _runtime(self.wsgi)
        if runtime is not None and runtime.stalled:
            return  # no heartbeat: gunicorn replaces this worker after TIMEOUT seconds
        self.notify()

    @staticmethod
    def arbiter_boot_error() -> int:
        from gunicorn.arbiter import Arbiter

        return int(Arbiter.WORKER_BOOT_ERROR)


class _DrainingServer(Server):
    """uvicorn's server, draining on a shutdown signal and leaving the exit to gunicorn."""

    def __init__(
        self, config: Any, on_exit: Callable[[], None], on_quit: Callable[[int, Any], None]
    ) -> None:
        super().__init__(config=config)
        self._on_exit = on_exit
        self._on_quit = on_quit

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # gunicorn's quick shutdown (what uvicorn-worker installs too: encode/uvicorn#1116).
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGQUIT, self._on_quit, signal.SIGQUIT, None)
        await super().serve(sockets=sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._on_exit()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, except that the signal is not raised again after shutdown: under gunicorn
        the worker's handler is then the default one, which would kill the process before
        gunicorn's exit path runs the worker_exit hook that flushes the log queue."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _runtime(app: Any) -> Any:
    return getattr(getattr(app, "state", None), "runtime", None)


def _begin_drain(app: Any) -> None:
    runtime = _runtime(app)
    if runtime is not None:
        runtime.draining = True
        runtime.set_ready_gauge()
