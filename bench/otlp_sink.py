"""A tiny OTLP/HTTP sink: accepts trace exports, counts them, and answers like a collector.

    python -m bench.otlp_sink --port P

It lets the benchmark measure the cost of exporting spans without a real collector. POST /v1/traces
(or any POST) gets 200 with an empty protobuf body, a valid empty ExportTraceServiceResponse;
GET /stats returns {"requests": n, "bytes": b}.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_sink", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args(argv)
    with SinkServer(options.port) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
