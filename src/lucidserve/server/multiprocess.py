"""prometheus_client's multiprocess mode, decided here and only here.

Under gunicorn, whatever the worker count, every worker writes its metric values to memory-mapped
files in one directory and the metrics process (metrics_server.py) merges them for /metrics. One
worker too: then the metrics port answers while that worker is busy or being restarted, and its
counts survive a restart. The price is the files' slower writes (about 20 µs of CPU a request, see
docs/observability.md); only a single process without gunicorn (`--reload`) keeps its metrics in
memory. The directory must be set before prometheus_client is imported (by the master, which
imports the app's code before forking), wiped at start (stale files would add old counts), and a
dead worker's live gauges removed (`mark_process_dead`).

Wiping is limited to directories lucidserve owns: an empty one, or one holding MARKER, which
lucidserve writes when it first takes a directory. Any other non-empty directory (a mistyped
LUCIDSERVE_MULTIPROC_DIR pointing at real data) is left untouched and start-up stops.

Limits of the mode (prometheus_client's): no Info or Enum metrics, every Gauge needs an explicit
multiprocess_mode, and exemplars are not stored in the files (lucidserve's exemplar store
re-attaches them, see observability/exemplars.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
MARKER = ".lucidserve-multiproc"


class ForeignDirectoryError(Exception):
    """The configured multiprocess directory holds files lucidserve did not make."""


def prepare(directory: Path | None) -> Path:
    """Create (or empty) the multiprocess directory and export it for the workers."""
    path = directory or Path(tempfile.mkdtemp(prefix="lucidserve-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    entries = list(path.iterdir())
    if entries and not (path / MARKER).is_file():
        raise ForeignDirectoryError(
            f"LUCIDSERVE_MULTIPROC_DIR {path} is not empty and was not made by lucidserve "
            f"(no {MARKER} file): it is left untouched. Point the setting at an empty directory "
            "(an emptyDir or a tmpfs), or unset it for a fresh temporary one"
        )
    for entry in entries:
        if entry.name == MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (path / MARKER).write_text(
        "prometheus_client multiprocess files of lucidserve, wiped at start\n"
    )
    # prometheus_client reads this at import, in every worker: it must be in the environment.
    os.environ[ENV] = str(path)
    return path


def shared_directory() -> Path | None:
    """The directory this process shares metrics through, or None outside gunicorn.

    The only read of the variable: prometheus_client chose its mode from it at import, and
    everything else (the observability object, the drift window, the master's clean-up) follows
    this answer.
    """
    shared = os.environ.get(ENV)
    return Path(shared) if shared else None


def worker_exited(pid: int) -> None:
    """Forget a dead worker's live gauges; fold its counts into the archive (none are lost)."""
    shared = shared_directory()
    if shared is None:
        return
    from prometheus_client import multiprocess

    from lucidserve.observability.exposition import compact_dead_worker

    try:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        compact_dead_worker(shared, pid)
    except FileNotFoundError:
        pass  # at shutdown the last workers may be reaped after the temp directory is removed
