"""Release and staging load test of a lucidserve service.

    locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8000 -u 10 -r 5 -t 60s

Payloads follow the served model's card (GET /v1/model), so the scenarios fit any packaged model.
Run from the repository root (or with it on PYTHONPATH): the `loadtest` package is imported from
there. This module is the Locust glue only: the load shape, the pass/fail listener and the option
registration; the rest lives in plain modules beside it.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import LoadTestShape, events, log
from locust.runners import WorkerRunner

from loadtest.options import ScenarioOptions, add_arguments
from loadtest.shapes import plan
from loadtest.thresholds import Limits, breaches
from loadtest.users import (
    BatchPredictionUser,
    DriftedPopulationUser,
    InvalidRequestUser,
    LabelProbabilityUser,
    SinglePredictionUser,
    select_populations,
)

logger = logging.getLogger("loadtest")

# Locust discovers the users and the shape among this module's names.
__all__ = [
    "BatchPredictionUser",
    "DriftedPopulationUser",
    "InvalidRequestUser",
    "LabelProbabilityUser",
    "ReleaseShape",
    "SinglePredictionUser",
]


class ReleaseShape(LoadTestShape):
    """The shape named by --shape: peak users from -u, spawn rate from -r, duration from -t."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        parsed = self.runner.environment.parsed_options
        options = ScenarioOptions.from_parsed(parsed)
        peak = int(getattr(parsed, "num_users", None) or 1)
        return plan(
            options.shape,
            self.get_run_time(),
            peak=peak,
            spawn_rate=float(getattr(parsed, "spawn_rate", None) or peak),
            duration=float(getattr(parsed, "run_time", None) or options.shape_duration),
            steps=options.steps,
        )


def enforce_limits(environment: Any, **_kwargs: Any) -> None:
    """Set the exit code from the limits: 1 when one is exceeded, else 0.

    Runs on the master (or the single local process) with the aggregated statistics, before
    Locust picks its exit code. A run within its limits exits 0 even with a few failures under
    the ratio, unless the scenario code itself crashed: then Locust's own non-zero code stays.
    """
    if isinstance(environment.runner, WorkerRunner):
        return  # a worker's numbers are partial: the master judges the run
    limits = Limits.from_options(ScenarioOptions.from_parsed(environment.parsed_options))
    total = environment.stats.total
    logger.info(
        "%d requests, %d failures (ratio %.4f), p95 %.0f ms, p99 %.0f ms",
        total.num_requests,
        total.num_failures,
        total.fail_ratio,
        total.get_response_time_percentile(0.95),
        total.get_response_time_percentile(0.99),
    )
    found = breaches(total, limits)
    if found:
        logger.error("load test FAILED its limits: %s", "; ".join(found))
        environment.process_exit_code = 1
    elif not environment.runner.exceptions and not log.unhandled_greenlet_exception:
        logger.info("load test passed its limits (%s)", limits)
        environment.process_exit_code = 0


events.init_command_line_parser.add_listener(add_arguments)
events.init.add_listener(select_populations)
events.quitting.add_listener(enforce_limits)
