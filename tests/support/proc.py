"""What the kernel says about a process: its children, CPU time and memory (/proc, Linux).

PSS (proportional set size) counts a page shared by n processes as 1/n in each, so its sum over a
process tree is what the tree costs, the pages its processes share counted once.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.cpu import parse_stat

_TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The direct children of `pid`."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(p) for p in (task / "children").read_text().split())
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of `pid` so far."""
    return parse_stat(Path(f"/proc/{pid}/stat").read_text())[1] / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for {pid}")


def descendants(pid: int) -> list[int]:
    """`pid`'s children, their children, and so on."""
    found: list[int] = []
    pending = [pid]
    while pending:
        try:
            below = children(pending.pop())
        except OSError:  # ended since it was listed
            continue
        found.extend(below)
        pending.extend(below)
    return found


def pss_bytes(pid: int) -> int:
    """Proportional set size of `pid`, from /proc/<pid>/smaps_rollup."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no Pss for {pid}")


def tree_pss_bytes(pid: int) -> int:
    """The PSS of `pid` and all of its descendants, summed."""
    return sum(pss_bytes(p) for p in [pid, *descendants(pid)])


def pss_available() -> bool:
    """Whether this system exposes what `pss_bytes` reads."""
    return Path("/proc/self/smaps_rollup").is_file()
