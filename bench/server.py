"""A `lucidserve serve` for one configuration: one worker, logs to a file, stopped by its pid."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
_SCRIPT = Path(sys.executable).with_name("lucidserve")
LUCIDSERVE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "lucidserve"]


class ServerError(Exception):
    """The service exited or did not become ready."""


@dataclass
class Server:
    """A running service; its stdout (JSON logs) goes to `log_path`, as a container log would."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def wait_ready(self) -> None:
        """Poll /readyz until it answers 200; raise with the log's tail if the process exits."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"service exited with {self.proc.returncode}:\n{self.log_tail()}")
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response,  # noqa: S310
            ):
                if response.status == 200:
                    return
            time.sleep(0.1)
        raise ServerError(
            f"service not ready within {READY_TIMEOUT_SECONDS:.0f}s:\n{self.log_tail()}"
        )

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise ServerError(f"service exited with {self.proc.returncode}:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM (graceful drain), SIGKILL after the timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def start_server(
    model_dir: Path,
    log_path: Path,
    env: Mapping[str, str],
    pin: Sequence[str] = (),
    workers: int | None = 1,
) -> Server:
    """Start `lucidserve serve` on a free loopback port (one worker unless told; None: the
    server's default); does not wait for readiness. Also used by `make loadtest`."""
    port = free_port()
    command = [
        *pin, *LUCIDSERVE, "serve", "--host", "127.0.0.1", "--port", str(port),
        "--model-dir", str(model_dir), *(["--workers", str(workers)] if workers else []),
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(env)
        )
    return Server(proc=proc, url=f"http://127.0.0.1:{port}", log_path=log_path)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
