"""Headless runs of loadtest/ for tests, a stand-in service that always fails, and scrapes."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import BIN, REPO, Service, start_process

LOCUSTFILE = REPO / "loadtest" / "locustfile.py"
REQUEST_COUNT = "http_server_request_duration_seconds"


@dataclass
class LocustRun:
    """A finished run: exit code, console output and the final statistics (--json-file)."""

    exit_code: int
    output: str
    stats: list[dict[str, Any]]

    @property
    def requests(self) -> int:
        return sum(int(entry["num_requests"]) for entry in self.stats)

    @property
    def failures(self) -> int:
        return sum(int(entry["num_failures"]) for entry in self.stats)

    def requests_named(self, name: str) -> int:
        return sum(int(e["num_requests"]) for e in self.stats if e["name"] == name)


def run_locust(
    host: str,
    out: Path,
    *,
    users: int,
    run_time: int,
    args: Sequence[str] = (),
    user_classes: Sequence[str] = (),
) -> LocustRun:
    """Run the load scenarios headless for `run_time` seconds and wait (bounded) for the exit."""
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        str(BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "--host", host,
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{run_time}s",
        "--stop-timeout", "10", "--json-file", str(out / "stats"), "--only-summary",
        "--loglevel", "INFO", *args, *user_classes,
    ]  # fmt: skip
    process = start_process(argv, out / "locust.log", cwd=REPO, name="locust")
    try:
        code = process.proc.wait(timeout=run_time + 60)
    except subprocess.TimeoutExpired:
        process.stop()
        raise
    stats_file = out / "stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.is_file() else []
    return LocustRun(exit_code=code, output=process.output(), stats=stats)


def request_counts(service: Service) -> dict[tuple[str, str, str], float]:
    """The service's request counter by (method, route, status), from one scrape of /metrics."""
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(service.metrics()):
        for sample in family.samples:
            if sample.name == f"{REQUEST_COUNT}_count":
                labels = sample.labels
                key = (
                    labels["http_request_method"],
                    labels["http_route"],
                    labels["http_response_status_code"],
                )
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def gauge_by_feature(service: Service, metric: str) -> dict[str, float]:
    """Values of a per-feature model gauge (e.g. model_drift_psi) from one scrape."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(service.metrics()):
        for sample in family.samples:
            if sample.name == metric:
                values[sample.labels["feature"]] = sample.value
    return values


@contextmanager
def failing_service(card: dict[str, Any], status: int = 503) -> Iterator[str]:
    """A loopback HTTP server that serves `card` on GET /v1/model and answers `status` otherwise."""
    card_body = json.dumps(card).encode()
    error_body = json.dumps(
        {"error": {"type": "unavailable", "message": "failing on purpose"}, "request_id": "x"}
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, code: int, body: bytes) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/v1/model":
                self._answer(200, card_body)
            else:
                self._answer(status, error_body)

        def do_POST(self) -> None:
            self._answer(status, error_body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
