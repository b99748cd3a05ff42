"""Pass/fail limits for a run: the locustfile exits non-zero when `breaches` finds any."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from loadtest.options import ScenarioOptions


class TotalStats(Protocol):
    """The part of Locust's aggregated StatsEntry the limits read."""

    num_requests: int
    fail_ratio: float

    def get_response_time_percentile(self, percent: float) -> float: ...


@dataclass(frozen=True)
class Limits:
    """Largest acceptable failure ratio and latencies; a latency limit of 0 is no limit."""

    max_fail_ratio: float
    max_p95_ms: float
    max_p99_ms: float

    @classmethod
    def from_options(cls, options: ScenarioOptions) -> Limits:
        return cls(options.max_fail_ratio, options.max_p95_ms, options.max_p99_ms)


def breaches(total: TotalStats, limits: Limits) -> list[str]:
    """Every exceeded limit, in words; empty when the run passes."""
    if total.num_requests == 0:
        return ["no request was made"]
    found = []
    if total.fail_ratio > limits.max_fail_ratio:
        found.append(f"failure ratio {total.fail_ratio:.4f} > {limits.max_fail_ratio}")
    for percent, limit in ((0.95, limits.max_p95_ms), (0.99, limits.max_p99_ms)):
        latency = total.get_response_time_percentile(percent)
        if limit > 0 and latency > limit:
            found.append(f"p{round(percent * 100)} latency {latency:.0f} ms > {limit:.0f} ms")
    return found
