"""The service's traffic since start, read from the request-duration histogram.

The input is whatever /metrics exposes (one process's histogram, or in multiprocess mode every
worker's files merged), so the figures are the same whichever worker computes them. Percentiles are
estimated from the buckets the way Prometheus' `histogram_quantile` does: linear interpolation
inside the bucket the rank falls in, the highest finite bound when it falls in `+Inf`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric

REQUEST_DURATION = "http_server_request_duration_seconds"
QUANTILES = (0.5, 0.9, 0.99)
# The API routes, as in the availability SLO of deploy/prometheus/rules.yml (probes, /metrics and
# the pages are not the API).
API_PREFIXES = ("/v1/", "/v2/")


@dataclass
class RouteTraffic:
    """Requests to one route (or a group of routes) and their latency distribution."""

    route: str
    requests: int = 0
    server_errors: int = 0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> cumulative count

    @property
    def error_ratio(self) -> float | None:
        """Share of requests answered with a 5xx status; None without requests."""
        return self.server_errors / self.requests if self.requests else None

    def quantile(self, q: float) -> float | None:
        """The estimated `q` quantile of the duration in seconds; None without requests."""
        bounds = sorted(self.buckets)
        if not bounds or self.buckets[bounds[-1]] <= 0:
            return None
        rank = q * self.buckets[bounds[-1]]
        lower, below = 0.0, 0.0
        for bound in bounds:
            count = self.buckets[bound]
            if count >= rank:
                if math.isinf(bound):
                    return lower
                inside = count - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
            lower, below = bound, count
        return lower

    def add(self, other: RouteTraffic) -> None:
        self.requests += other.requests
        self.server_errors += other.server_errors
        for bound, count in other.buckets.items():
            self.buckets[bound] = self.buckets.get(bound, 0.0) + count


@dataclass(frozen=True)
class TrafficSummary:
    """Requests since the service started: per route, and the API routes together."""

    seconds: float
    api: RouteTraffic
    routes: list[RouteTraffic]

    def rate(self, traffic: RouteTraffic) -> float:
        """Requests per second since start."""
        return traffic.requests / self.seconds if self.seconds > 0 else 0.0


def summarise_traffic(
    metrics: Iterable[Metric], seconds: float, api_prefixes: Sequence[str] = API_PREFIXES
) -> TrafficSummary:
    """The traffic in `metrics` (families, as a registry collects them) over `seconds`."""
    routes: dict[str, RouteTraffic] = {}
    for family in metrics:
        if family.name != REQUEST_DURATION:
            continue
        for sample in family.samples:
            route = routes.setdefault(
                sample.labels.get("http_route", "unmatched"),
                RouteTraffic(sample.labels.get("http_route", "unmatched")),
            )
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                route.buckets[bound] = route.buckets.get(bound, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                route.requests += int(sample.value)
                if sample.labels.get("http_response_status_code", "").startswith("5"):
                    route.server_errors += int(sample.value)
    api = RouteTraffic("API (/v1, /v2)")
    for route in routes.values():
        if route.route.startswith(tuple(api_prefixes)):
            api.add(route)
    ordered = sorted(routes.values(), key=lambda r: (-r.requests, r.route))
    return TrafficSummary(seconds=seconds, api=api, routes=[r for r in ordered if r.requests])
