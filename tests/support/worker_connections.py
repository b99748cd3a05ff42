"""HTTP connections pinned to a given gunicorn worker, found through /proc (Linux).

A test that must hear every worker's answer cannot rely on chance: it opens connections, asks
the kernel which process holds the server side of each (/proc/net/tcp gives the socket inode,
/proc/<pid>/fd the process), and keeps one connection per worker.
"""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")


@dataclass
class WorkerConnection:
    """A keep-alive connection whose requests are all answered by worker `pid`."""

    pid: int
    connection: http.client.HTTPConnection

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        payload = json.dumps(body).encode() if body is not None else None
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def available() -> bool:
    """Whether this system exposes what `connections_to_workers` reads."""
    return (PROC / "net" / "tcp").is_file() and (PROC / "self" / "fd").is_dir()


METRICS_PROCESS = b"lucidserve.server.metrics_server"


def child_pids(master_pid: int) -> set[int]:
    """The child processes of `master_pid`: gunicorn's workers and the metrics process."""
    children: set[int] = set()
    for task in (PROC / str(master_pid) / "task").iterdir():
        text = (task / "children").read_text().split()
        children.update(int(pid) for pid in text)
    return children


def worker_pids(master_pid: int) -> set[int]:
    """gunicorn's workers: the children of `master_pid` but the metrics process."""
    return {pid for pid in child_pids(master_pid) if not _is_metrics_process(pid)}


def metrics_process_pid(master_pid: int) -> int | None:
    """The metrics process the master started, if it runs."""
    found = [pid for pid in child_pids(master_pid) if _is_metrics_process(pid)]
    return found[0] if found else None


def _is_metrics_process(pid: int) -> bool:
    try:
        return METRICS_PROCESS in (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:  # gone since it was listed
        return False


def connections_to_workers(
    port: int, master_pid: int, *, workers: int, attempts: int = 40
) -> list[WorkerConnection]:
    """One open connection to each of `workers` workers of the server on 127.0.0.1:`port`."""
    pids = worker_pids(master_pid)
    found: dict[int, WorkerConnection] = {}
    spare: list[http.client.HTTPConnection] = []
    try:
        for _ in range(attempts):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            pid = _owner(port, connection.sock.getsockname()[1], pids)
            if pid is not None and pid not in found:
                found[pid] = WorkerConnection(pid, connection)
                if len(found) == workers:
                    return list(found.values())
            else:
                spare.append(connection)  # kept open, so the next one is accepted afresh
    finally:
        for connection in spare:
            connection.close()
    for worker in found.values():
        worker.close()
    raise RuntimeError(f"reached {len(found)} of {workers} workers in {attempts} connections")


def _owner(server_port: int, client_port: int, pids: set[int]) -> int | None:
    inode = _server_socket_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = PROC / str(pid) / "fd"
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(fd_dir / fd) == target:
                    return pid
            except OSError:
                continue
    return None


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    local, remote = f":{server_port:04X}", f":{client_port:04X}"
    for line in (PROC / "net" / "tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(local) and fields[2].endswith(remote):
            return fields[9]
    return None
