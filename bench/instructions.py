"""Instructions executed by a command, counted by valgrind's cachegrind: a measure that noise on a
shared machine does not move.

CPU time on a shared 2-core VM moves by 10-20 % between identical runs; the number of instructions
a run executes moves by well under 1 %. cachegrind (`--cache-sim=no`: count only) runs the command
about 30 times slower and prints the total (`I refs`). A per-request figure comes from two runs
that differ only in the number of requests: the start-up, imports and warm-up cancel out.

Instructions are not time (a cache miss costs more than an add), but for one program on one
machine they rank the parts the same way, and unlike time they can be compared across commits.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.debian import ensure_command

_TOTAL = re.compile(r"^==\d+== I\s+refs:\s+([\d,]+)\s*$", re.MULTILINE)


class CountError(Exception):
    """The command failed, or valgrind printed no total."""


def count_instructions(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float
) -> int:
    """The instructions `command` executes, every thread included."""
    valgrind = ensure_command("valgrind", "valgrind")
    done = subprocess.run(
        [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         *command],
        env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise CountError(f"{command[0]} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return parse_total(done.stderr)


def parse_total(stderr: str) -> int:
    """The `I refs` total from cachegrind's summary."""
    match = _TOTAL.search(stderr)
    if match is None:
        raise CountError(f"no instruction total in valgrind's output:\n{stderr[-2000:]}")
    return int(match[1].replace(",", ""))


def per_unit(small: int, large: int, extra_units: int) -> float:
    """Instructions per unit of work, from two runs that differ by `extra_units` units."""
    if extra_units <= 0:
        raise ValueError("the larger run must do more work")
    return (large - small) / extra_units
