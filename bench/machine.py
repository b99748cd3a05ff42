"""The machine a benchmark runs on: which CPU the server and the load generator get, and what to
record beside the results (the commit, the CPU, the kernel) to compare runs across commits."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Pinning:
    """The server's CPU and the load side's (wrk, the OTLP sink); None when not pinned."""

    server_cpu: int | None
    load_cpu: int | None
    note: str

    def server(self) -> list[str]:
        """The `taskset` prefix of a server-side command (empty when not pinned)."""
        return [] if self.server_cpu is None else ["taskset", "-c", str(self.server_cpu)]

    def load(self) -> list[str]:
        """The `taskset` prefix of a load-side command (empty when not pinned)."""
        return [] if self.load_cpu is None else ["taskset", "-c", str(self.load_cpu)]


def plan_pinning() -> Pinning:
    """The server on the first usable CPU and the load on the second; no pinning with fewer."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return Pinning(None, None, f"not pinned: only {len(cpus)} CPU usable")
    if not shutil.which("taskset"):
        return Pinning(None, None, "not pinned: taskset (util-linux) is not installed")
    server, load = cpus[0], cpus[1]
    return Pinning(server, load, f"server pinned to CPU {server}, wrk and the bench to CPU {load}")


def describe(pinning: Pinning) -> dict[str, Any]:
    """HEAD's commit (and whether src/ differs from it: the bench measures the working tree), the
    CPUs, kernel and Python, and the pinning."""
    commit = _git("rev-parse", "HEAD")
    return {
        "git": {
            "commit": commit,
            "src_modified": bool(_git("status", "--porcelain", "--", "src")) if commit else None,
        },
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "cpu_count": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "kernel": platform.release(),
            "python": platform.python_version(),
        },
        "pinning": asdict(pinning),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
