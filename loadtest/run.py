"""`make loadtest`: one headless Locust run with CSV, HTML and JSON reports.

    python -m loadtest.run [--url URL] [--users N] [--run-time 60s] [LOCUST OPTIONS...]

Without --url it serves the local model bundle on a free loopback port for the run's length, then
stops it. Options it does not know go to Locust unchanged (--shape, --max-p95-ms, user classes...).
The exit code is Locust's: non-zero when a limit was exceeded or the service could not be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.support.processes import start_service

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


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
    try:
        server = start_service(
            Path(options.model_dir).resolve(), out / "service.log", workers=options.workers,
            ready_timeout=120.0,
        )  # fmt: skip
    except (RuntimeError, TimeoutError) as exc:
        raise SystemExit(f"the local service did not start: {exc}") from None
    try:
        print(f"local service on {server.url} (log: {server.log_path})", flush=True)
        yield server.url
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
