"""wrk, the load generator: one run, and the result line that predict.lua prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("predict.lua")
RESULT_PREFIX = "BENCH_RESULT "
REQUEST_TIMEOUT = "10s"  # wrk's default of 2 s would count slow queued requests as errors
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


class WrkError(Exception):
    """wrk is missing, or a run produced no result."""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles, and everything that was not a 2xx answer."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def find_wrk() -> str:
    """The path of wrk (a Debian package listed in scripts/system-packages.txt)."""
    found = shutil.which("wrk")
    if not found:
        raise WrkError("wrk is not installed: `make system-deps` installs it")
    return found


def run_wrk(
    wrk: str,
    url: str,
    body_file: Path,
    *,
    connections: int,
    seconds: int,
    pin: Sequence[str] = (),
) -> WrkResult:
    """POST `body_file` to `url` over `connections` keep-alive connections for `seconds`."""
    command = [
        *pin, wrk, "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={REQUEST_TIMEOUT}",
        "--latency", "-s", str(LUA_SCRIPT), url,
    ]  # fmt: skip
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}: {done.stderr.strip() or done.stdout}")
    return parse_result(done.stdout)


def parse_result(output: str) -> WrkResult:
    """The result line that predict.lua prints when wrk's run ends."""
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            raw = json.loads(line.removeprefix(RESULT_PREFIX))
            return WrkResult(
                requests=int(raw["requests"]),
                seconds=raw["duration_us"] / 1e6,
                p50_ms=raw["latency_p50_us"] / 1e3,
                p99_ms=raw["latency_p99_us"] / 1e3,
                errors={kind: int(raw["errors"][kind]) for kind in ERROR_KINDS},
            )
    raise WrkError(f"wrk printed no {RESULT_PREFIX.strip()} line:\n{output}")
