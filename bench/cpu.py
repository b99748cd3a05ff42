"""CPU time of a process tree (the service: gunicorn's arbiter and its worker), read from /proc.

The throughput ratios of a shared machine move with its neighbours; the CPU the service spent per
request moves less, and says what observability costs in microseconds. Linux only: elsewhere the
reading is None and the table shows "-".
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu_seconds(pid: int, proc: Path = PROC) -> float | None:
    """User plus system CPU seconds of `pid` and all its descendants, living ones only (None
    when `pid` is gone or there is no /proc)."""
    stats = _all_stats(proc)
    if pid not in stats:
        return None
    children: dict[int, list[int]] = {}
    for child, (parent, _) in stats.items():
        children.setdefault(parent, []).append(child)
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += stats[current][1]
        pending.extend(children.get(current, ()))
    return total / _TICKS_PER_SECOND


def parse_stat(text: str) -> tuple[int, int]:
    """(parent pid, utime + stime in clock ticks) from the text of /proc/<pid>/stat.

    The command name (field 2) is in parentheses and may hold spaces or parentheses itself, so
    the fields are counted from the last ')'.
    """
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): ppid is field 4, utime field 14, stime field 15.
    return int(rest[1]), int(rest[11]) + int(rest[12])


def _all_stats(proc: Path) -> dict[int, tuple[int, int]]:
    stats = {}
    try:
        entries = list(proc.iterdir())
    except OSError:
        return {}
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            stats[int(entry.name)] = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # a process that ended while we looked
    return stats
