"""The gunicorn master's side of the metrics port: bind it, start the metrics process, keep it up.

The master binds the port before gunicorn starts (a port in use fails the start with one clear
message) and starts `python -m lucidserve.server.metrics_server` with the listening socket at once
(a scrape that comes before it is up waits in the socket's backlog); gunicorn's arbiter checks it
on every turn of its loop (about once a second) and starts a new one if it died, and stops it after
the workers at shutdown. Workers close their inherited copy of the socket right after the fork.
gunicorn reaps every child, this one included; `Popen.poll` then reports it gone all the same.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from lucidserve.server import multiprocess
from lucidserve.server.metrics_server import listen

logger = logging.getLogger("lucidserve")

STOP_SECONDS = 5.0


class MetricsProcess:
    """The metrics process of one gunicorn master."""

    def __init__(self, host: str, port: int, model_dir: Path, directory: Path) -> None:
        self.host, self.port = host, port
        self.model_dir, self.directory = model_dir, directory
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def bind(self) -> None:
        """Bind and listen on the metrics port (in the master, before anything forks)."""
        self._sock = listen(self.host, self.port)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the metrics process on the bound socket."""
        assert self._sock is not None, "bind() first"
        fd = self._sock.fileno()
        env = dict(os.environ)
        # The metrics process only reads the files: were the variable set, prometheus_client would
        # make its (unexposed) metric objects write files of their own, which would be pooled.
        env.pop(multiprocess.ENV, None)
        argv = [
            sys.executable, "-m", "lucidserve.server.metrics_server",
            "--listen-fd", str(fd), "--multiproc-dir", str(self.directory),
            "--model-dir", str(self.model_dir), "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        self._proc = subprocess.Popen(argv, pass_fds=(fd,), env=env, stdin=subprocess.DEVNULL)

    def keep_alive(self) -> None:
        """Start a new metrics process if the current one has exited."""
        if self._proc is None or self._proc.poll() is None:
            return
        logger.error(
            "metrics process exited: starting a new one",
            extra={
                "event": "metrics_server_exited",
                "pid": self._proc.pid,
                "exit_code": self._proc.returncode,
            },
        )
        self.start()

    def close_inherited(self) -> None:
        """In a worker after the fork: drop the copy of the listening socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def stop(self) -> None:
        """Stop the metrics process (SIGTERM, then SIGKILL) and close the socket."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_SECONDS)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
