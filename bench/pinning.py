"""Which CPU the server gets and which the load generator gets, where the machine allows it."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Pinning:
    """`taskset` prefixes for the server side and the load side (empty when not pinned)."""

    server_cpu: int | None
    load_cpu: int | None
    note: str

    def server(self) -> list[str]:
        return _taskset(self.server_cpu)

    def load(self) -> list[str]:
        return _taskset(self.load_cpu)

    def as_dict(self) -> dict[str, object]:
        return {"server_cpu": self.server_cpu, "load_cpu": self.load_cpu, "note": self.note}


def plan_pinning() -> Pinning:
    """The server on the first usable CPU and wrk on the second; no pinning with fewer than two."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return Pinning(None, None, f"not pinned: only {len(cpus)} CPU usable")
    if not shutil.which("taskset"):
        return Pinning(None, None, "not pinned: taskset (util-linux) is not installed")
    server, load = cpus[0], cpus[1]
    return Pinning(server, load, f"server pinned to CPU {server}, wrk and helpers to CPU {load}")


def _taskset(cpu: int | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]
