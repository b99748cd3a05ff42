"""Real processes for tests: free ports, readiness polls, and stops by the process's own id.

Also the one way `make bench` and `make loadtest` start a local service (`start_service`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from tests.support.proc import children

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (httpx.HTTPError, OSError) as exc:
            last_error, value = exc, None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or probe!r}: {last_error}")


@dataclass
class ManagedProcess:
    """A process started by a test, with its output in a file, stopped by its own pid."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    name: str = "process"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send `sig`, wait up to `timeout`, then SIGKILL it and every process it started (a
        killed gunicorn master would leave its workers running); returns the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_tree(self.proc.pid)
        return self.proc.wait(timeout=10)


def start_process(
    argv: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    name: str = "process",
) -> ManagedProcess:
    """Start `argv` with stdout and stderr going to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd or REPO,
        )
    return ManagedProcess(proc=proc, log_path=log_path, name=name)


OPENMETRICS = "application/openmetrics-text"


@dataclass
class Service(ManagedProcess):
    """A running `lucidserve serve`, its API on `port` and /metrics on `metrics_port`."""

    port: int = 0
    url: str = ""
    client: httpx.Client = field(default_factory=httpx.Client)
    metrics_port: int = 0

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def metrics_response(self, *, openmetrics: bool = False) -> httpx.Response:
        """One scrape of the metrics port (OpenMetrics, with exemplars, when asked for)."""
        headers = {"accept": OPENMETRICS} if openmetrics else {}
        return httpx.get(self.metrics_url, headers=headers, timeout=30.0)

    def metrics(self, *, openmetrics: bool = False) -> str:
        """The exposition text of one scrape of the metrics port (which must answer 200)."""
        response = self.metrics_response(openmetrics=openmetrics)
        response.raise_for_status()
        return response.text

    def log_lines(self) -> list[str]:
        return self.output().splitlines()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.client.close()
        return super().stop(sig, timeout)


def start_service(
    model_dir: Path,
    log_path: Path,
    *,
    workers: int | None = 1,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    ready_timeout: float = 60.0,
    prefix: Sequence[str] = (),
) -> Service:
    """Start `lucidserve serve` on a free loopback port and wait until /readyz answers 200.

    `workers=None` leaves the count to the server (ready once one worker is warm); `prefix` goes
    before the command (the benchmark's `taskset -c N`, which execs: the pid is the server's).
    """
    port = free_port()
    metrics_port = int((env or {}).get("LUCIDSERVE_METRICS_PORT") or 0)
    while metrics_port in (0, port):
        metrics_port = free_port()
    env = {"LUCIDSERVE_METRICS_PORT": str(metrics_port), **(env or {})}
    argv = [
        *prefix, str(BIN / "lucidserve"), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--model-dir", str(model_dir), *(["--workers", str(workers)] if workers else []),
        *extra_args,
    ]  # fmt: skip
    base = start_process(argv, log_path, env=env, name="lucidserve")
    url = f"http://127.0.0.1:{port}"
    service = Service(
        proc=base.proc,
        log_path=log_path,
        name="lucidserve",
        port=port,
        url=url,
        metrics_port=metrics_port,
    )
    service.client = httpx.Client(base_url=url, timeout=30.0)

    metrics_on = env.get("LUCIDSERVE_METRICS_ENABLED", "true").lower() not in ("false", "0")

    def ready() -> bool:
        if service.proc.poll() is not None:
            raise RuntimeError(f"service exited early:\n{service.output()[-4000:]}")
        # Every worker logs `model_ready` once warm; any of them may answer the next request.
        warm = service.output().count('"event":"model_ready"')
        if warm < (workers or 1) or service.client.get("/readyz").status_code != 200:
            return False
        # And the metrics port answers (its process boots beside the workers).
        return not metrics_on or service.metrics_response().status_code == 200

    try:
        wait_until(ready, timeout=ready_timeout, what=f"{url}/readyz")
    except BaseException:
        service.stop(signal.SIGKILL)
        raise
    return service


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and its descendants, children first, each by its own id."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for child in children(pid):
            kill_tree(child)
        os.kill(pid, signal.SIGKILL)
