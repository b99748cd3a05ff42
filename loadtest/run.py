"""`make loadtest`: one headless Locust run with CSV, HTML and JSON reports.

    python -m loadtest.run [--url URL] [--users N] [--run-time 60s] [LOCUST OPTIONS...]

Without --url it serves the local model bundle on a free loopback port for the run's length, then
stops it. Options it does not know go to Locust unchanged (--shape, --max-p95-ms, user classes...).
The exit code is Locust's: non-zero when a limit was exceeded or the service could not be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test; returns Locust's exit code."""
    options, locust_args = _parser().parse_known_args(argv)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    with _target(options, out) as url:
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", url, "--users", str(options.users), "--spawn-rate", str(options.spawn_rate),
            "--run-time", options.run_time, "--stop-timeout", str(options.stop_timeout),
            "--csv", str(out / "locust"), "--html", str(out / "report.html"),
            "--json-file", str(out / "stats"), "--only-summary", *locust_args,
        ]  # fmt: skip
        print("running:", " ".join(command), flush=True)
        code = subprocess.call(command)
    print(f"reports in {out}/ (locust_*.csv, report.html, stats.json); exit code {code}")
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.run",
        description="Headless Locust run with reports; unknown options go to Locust.",
        allow_abbrev=False,
    )
    parser.add_argument("--url", default="", help="service to test (default: start a local one)")
    parser.add_argument("--model-dir", default="models/default", help="bundle to serve locally")
    parser.add_argument("--workers", type=int, help="workers of the local service (its default)")
    parser.add_argument("--users", type=int, default=10, help="peak concurrent users")
    parser.add_argument("--spawn-rate", type=float, default=5.0, help="users started per second")
    parser.add_argument("--run-time", default="60s", help="run length, e.g. 90s, 5m")
    parser.add_argument("--stop-timeout", type=int, default=10, help="seconds to finish tasks")
    parser.add_argument("--out", default="reports/loadtest", help="directory for the reports")
    return parser


@contextlib.contextmanager
def _target(options: argparse.Namespace, out: Path) -> Iterator[str]:
    """The URL under test: the given one, or a local service that lives for the block."""
    if options.url:
        yield options.url.rstrip("/")
        return
    port = _free_port()
    command = [
        sys.executable, "-m", "lucidserve", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--model-dir", options.model_dir,
        *(["--workers", str(options.workers)] if options.workers else []),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with (out / "service.log").open("wb") as log:
        service = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(service, url)
        print(f"local service on {url} (log: {out / 'service.log'})", flush=True)
        yield url
    finally:
        _stop(service)


def _wait_ready(service: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SystemExit(f"the local service exited with code {service.returncode}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(f"{url}/readyz", timeout=2) as response,  # noqa: S310
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the local service was not ready within {READY_TIMEOUT_SECONDS:.0f}s")


def _stop(service: subprocess.Popen[bytes]) -> None:
    if service.poll() is None:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
