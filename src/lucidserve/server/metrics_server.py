"""The metrics port: `GET /metrics` served beside the workers, never by them.

Under gunicorn, a small process of its own (`python -m lucidserve.server.metrics_server`, started
and restarted by the master, see metrics_process.py) answers on LUCIDSERVE_METRICS_PORT from the
workers' multiprocess files: the pooled metrics with their exemplars (exposition.py) and the drift
gauges computed from the shared window files (drift.py). A scrape takes no time from the workers,
and answers while every worker is busy, restarting or not yet forked.

Why a process and not a thread in the master: gunicorn forks a worker whenever one dies, and a
thread of the master would exist at every such fork; a lock or a locked file it held at that
moment (a scrape holds the multiprocess files' flock while it merges them) would be inherited, held,
by the new worker. The process is started by fork and exec, so it shares nothing with the master
but the listening socket (the master binds it, so a port in use fails the start at once and a
restarted metrics process takes over the same socket without a gap).

With one process (`lucidserve serve --reload`), that process serves the port itself, from its own
registry, on a daemon thread (`serve_in_thread`): it never forks.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# prometheus_client is imported inside the functions below: the gunicorn master imports this
# module before it sets the multiprocess directory, which prometheus_client reads at import.

logger = logging.getLogger("lucidserve")

PATH = "/metrics"
_PARENT_CHECK_SECONDS = 1.0

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


def metrics_app(registry: CollectorRegistry) -> WsgiApp:
    """WSGI: /metrics in the format the Accept header asks for (OpenMetrics keeps exemplars)."""
    from prometheus_client import make_wsgi_app

    exposition = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH:
            return exposition(environ, start_response)  # type: ignore[no-any-return]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [f"not found: this port serves only {PATH}\n".encode()]

    return app


class MetricsHTTPServer(ThreadingMixIn, WSGIServer):
    """A threaded WSGI server on a socket that is already listening."""

    daemon_threads = True

    def __init__(self, sock: socket.socket, app: WsgiApp) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__((host, port), _QuietHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = (host, port)
        self.server_name, self.server_port = host, port
        self.setup_environ()
        self.set_app(app)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not worth a log line


def serve_in_thread(registry: CollectorRegistry, host: str, port: int) -> MetricsHTTPServer:
    """One process: serve `registry` on (host, port) from a daemon thread of this process."""
    server = MetricsHTTPServer(listen(host, port), metrics_app(registry))
    threading.Thread(target=server.serve_forever, name="metrics-port", daemon=True).start()
    logger.info(
        "metrics port open",
        extra={"event": "metrics_server_started", "pid": os.getpid(), "metrics_port": port},
    )
    return server


def pooled_registry(model_dir: Path, directory: Path) -> CollectorRegistry:
    """Every worker's metrics merged from `directory`, and the drift gauges of the shared window."""
    from prometheus_client import CollectorRegistry

    from lucidserve.bundle.store import read_card
    from lucidserve.observability.exposition import PooledCollector
    from lucidserve.settings import Settings

    settings = Settings(model_dir=model_dir)
    registry = CollectorRegistry()
    registry.register(PooledCollector(directory))
    card = read_card(model_dir)
    if settings.drift_enabled and card.drift:
        from lucidserve.observability.drift import WINDOW_SUBDIR, DriftMonitor
        from lucidserve.observability.metrics import local_drift_counts

        # The monitor here only reads the window the workers write (it never observes). Its
        # counters live in a registry nothing exposes: the workers' counts come from their files.
        unexposed = CollectorRegistry()
        monitor = DriftMonitor(
            card.drift,
            card.features,
            settings,
            model=(card.name, card.version),
            count_cells=lambda cells: local_drift_counts(unexposed, card.name, card.version, cells),
            window_dir=directory / WINDOW_SUBDIR,
        )
        registry.register(monitor.collector())
    return registry


def main(argv: Sequence[str] | None = None) -> int:
    """The metrics process: serve the pooled registry on the inherited socket until told to stop
    (SIGTERM) or until the master that started it is gone."""
    parser = argparse.ArgumentParser(prog="lucidserve-metrics", description=__doc__)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--multiproc-dir", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)

    from lucidserve.observability.logging import configure_logging
    from lucidserve.settings import Settings

    pipeline = configure_logging(Settings(model_dir=args.model_dir).log_level, asynchronous=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    registry = pooled_registry(args.model_dir, args.multiproc_dir)
    server = MetricsHTTPServer(socket.socket(fileno=args.listen_fd), metrics_app(registry))
    threading.Thread(target=server.serve_forever, name="metrics-port", daemon=True).start()
    logger.info(
        "metrics port open",
        extra={
            "event": "metrics_server_started",
            "pid": os.getpid(),
            "metrics_port": server.server_port,
        },
    )
    # Also end when the master is gone without stopping us (SIGKILL): we are then re-parented.
    while not stop.wait(_PARENT_CHECK_SECONDS) and os.getppid() == args.parent_pid:
        pass
    server.shutdown()
    server.server_close()
    pipeline.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
