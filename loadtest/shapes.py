"""Load shapes: steady, step ramp and spike, each ending after its duration.

Plain functions of elapsed time, so they are tested without Locust; the locustfile's one shape
class (Locust runs the first it finds) follows the plan that --shape names.
"""

from __future__ import annotations

import math

# The spike shape: a baseline of 1/SPIKE_FACTOR of the peak, the peak during the middle fifth.
SPIKE_FACTOR = 5
SPIKE_WINDOW = (0.4, 0.6)


def plan(
    shape: str, elapsed: float, *, peak: int, spawn_rate: float, duration: float, steps: int = 4
) -> tuple[int, float] | None:
    """(users, spawn rate) at `elapsed` seconds into the run, or None once it is over."""
    if elapsed >= duration:
        return None
    peak = max(peak, 1)
    if shape == "steady":
        return peak, spawn_rate
    if shape == "step":
        steps = max(steps, 1)
        step = min(int(elapsed / (duration / steps)), steps - 1)
        return math.ceil(peak * (step + 1) / steps), spawn_rate
    if shape == "spike":
        # The jump in and out is as fast as Locust can start users: that is what a spike is.
        start, end = (duration * edge for edge in SPIKE_WINDOW)
        users = peak if start <= elapsed < end else math.ceil(peak / SPIKE_FACTOR)
        return users, max(spawn_rate, float(peak))
    raise ValueError(f"unknown shape {shape!r}")
