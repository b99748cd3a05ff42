"""What the results were measured on: the commit and the machine, for comparing across commits."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def git_state() -> dict[str, Any]:
    """HEAD's commit and whether src/ differs from it (the benchmark measures the working tree)."""
    commit = _git("rev-parse", "HEAD")
    changed = _git("status", "--porcelain", "--", "src")
    return {"commit": commit, "src_modified": bool(changed) if commit else None}


def machine() -> dict[str, Any]:
    """CPU count, CPU model, kernel, Python."""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
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
