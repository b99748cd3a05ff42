"""What a process tree costs in memory, from /proc (Linux): PSS, its fair share of shared pages.

PSS (proportional set size) counts a page shared by n processes as 1/n in each, so the sum over
a process tree is what the tree costs, counting the pages its processes share once.
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def descendants(pid: int) -> list[int]:
    """`pid`'s children, their children, and so on."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in (PROC / str(parent) / "task").iterdir():
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:  # the task ended since it was listed
                continue
            found.extend(children)
            pending.extend(children)
    return found


def pss_bytes(pid: int) -> int:
    """The process's PSS, from /proc/<pid>/smaps_rollup."""
    for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no Pss line for process {pid}")


def tree_pss_bytes(pid: int) -> int:
    """The PSS of `pid` and all of its descendants, summed."""
    return sum(pss_bytes(p) for p in [pid, *descendants(pid)])


def available() -> bool:
    """Whether this system exposes what these functions read."""
    return (PROC / "self" / "smaps_rollup").is_file() and (PROC / "self" / "task").is_dir()
