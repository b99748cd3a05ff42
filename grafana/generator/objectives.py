"""The SLO numbers, read from the rules file that records them, so panels and alerts agree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import promql_parser

OBJECTIVE = "lucidserve:slo_objective:ratio"
LATENCY_THRESHOLD = "lucidserve:slo_latency_threshold:seconds"


@dataclass(frozen=True)
class Objectives:
    """Availability and latency objectives (ratios) and the latency threshold (seconds)."""

    availability: float
    latency: float
    latency_threshold: float

    def budget(self, slo: str) -> float:
        """The bad ratio the objective allows: 1 - objective."""
        return 1 - (self.availability if slo == "availability" else self.latency)

    def objective(self, slo: str) -> float:
        return self.availability if slo == "availability" else self.latency


def percent(ratio: float) -> str:
    """0.999 -> '99.9%', 0.99 -> '99%' (no trailing float noise)."""
    return f"{round(ratio * 100, 6):g}%"


def milliseconds(seconds: float) -> str:
    """0.25 -> '250 ms'."""
    return f"{round(seconds * 1000, 6):g} ms"


def load_objectives(rules: Mapping[str, Any]) -> Objectives:
    """Find the `vector(<number>)` recording rules of the objectives in a parsed rules file."""
    values: dict[tuple[str, str], float] = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("record") in (OBJECTIVE, LATENCY_THRESHOLD):
                key = (rule["record"], rule.get("labels", {}).get("slo", ""))
                values[key] = _constant(rule["expr"])
    return Objectives(
        availability=values[(OBJECTIVE, "availability")],
        latency=values[(OBJECTIVE, "latency")],
        latency_threshold=values[(LATENCY_THRESHOLD, "")],
    )


def _constant(expr: str) -> float:
    call = promql_parser.parse(expr)
    if not (isinstance(call, promql_parser.Call) and call.func.name == "vector"):
        raise ValueError(f"an SLO constant must be recorded as vector(<number>), not {expr!r}")
    (number,) = call.args
    return float(number.val)
