"""A tiny OTLP/HTTP sink: accepts trace exports, counts them, and answers like a collector.

    python -m bench.otlp_sink --port P

It lets the benchmarks measure the cost of exporting spans without a real collector. POST
/v1/traces (or any POST) gets 200 with an empty protobuf body, a valid empty
ExportTraceServiceResponse; GET /stats returns {"requests": n, "bytes": b}. `running_sink` starts
one for a benchmark run (on the load generator's CPU) and stops it by its pid.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import environment
from bench.pinning import Pinning
from bench.server import free_port

START_TIMEOUT_SECONDS = 30.0


class SinkError(Exception):
    """The sink process did not start."""


class SinkHandler(BaseHTTPRequestHandler):
    """Reads and drops each export; counts requests and bytes."""

    server: SinkServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        size = int(self.headers.get("content-length", "0"))
        self.rfile.read(size)
        self.server.count(size)
        self._reply(200, "application/x-protobuf", b"")

    def do_GET(self) -> None:
        if self.path != "/stats":
            self._reply(404, "text/plain", b"not found\n")
            return
        self._reply(200, "application/json", json.dumps(self.server.stats()).encode())

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


class SinkServer(ThreadingHTTPServer):
    """The listening sink and its counters."""

    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), SinkHandler)
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes = 0

    def count(self, size: int) -> None:
        with self._lock:
            self._requests += 1
            self._bytes += size

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self._requests, "bytes": self._bytes}


@dataclass
class OtlpSink:
    """Where traces go: nowhere (no endpoint, the service's default) or a local sink process."""

    proc: subprocess.Popen[bytes] | None = None
    endpoint: str | None = None

    @property
    def mode(self) -> str:
        return "local OTLP sink" if self.endpoint else "no OTLP endpoint"

    def describe(self) -> str:
        if self.endpoint:
            return f"sampled spans are exported to a local OTLP/HTTP sink at {self.endpoint}"
        return "no OTLP endpoint (the default): sampled spans are recorded but not exported"

    def stats(self) -> dict[str, int]:
        if not self.endpoint:
            return {}
        with urllib.request.urlopen(f"{self.endpoint}/stats", timeout=5) as response:  # noqa: S310
            stats: dict[str, int] = json.loads(response.read())
        return stats

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "endpoint": self.endpoint, "received": self.stats() or None}


@contextmanager
def running_sink(enabled: bool, pinning: Pinning, work: Path) -> Iterator[OtlpSink]:
    """A sink process for the run when `enabled` (its log under `work`), else no endpoint."""
    if not enabled:
        yield OtlpSink()
        return
    port = free_port()
    log = work / "logs" / "otlp-sink.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*pinning.load(), sys.executable, "-m", "bench.otlp_sink", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=environment.REPO,
        )  # fmt: skip
    sink = OtlpSink(proc, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                sink.stats()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SinkError(f"the OTLP sink did not start: {log.read_text()}") from None
                time.sleep(0.1)
        yield sink
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_sink", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args(argv)
    with SinkServer(options.port) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
