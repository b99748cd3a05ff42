"""The scenarios' own command-line options (also settable as LOCUST_* environment variables)."""

from __future__ import annotations

from argparse import Namespace
from dataclasses import dataclass, fields
from typing import Any

SHAPES = ("steady", "step", "spike")


@dataclass(frozen=True)
class ScenarioOptions:
    """Everything the users, shapes and thresholds read, with the defaults of a release check."""

    seed: int = 20240601
    card_file: str = ""
    wait_min: float = 0.05
    wait_max: float = 0.5
    batch_median_rows: int = 8
    batch_max_rows: int = 100
    drift_feature: str = ""
    drift_shift: float = 0.5
    shape: str = "steady"
    shape_duration: float = 60.0
    steps: int = 4
    max_fail_ratio: float = 0.01
    max_p95_ms: float = 500.0
    max_p99_ms: float = 1000.0

    @classmethod
    def from_parsed(cls, parsed: Namespace | None) -> ScenarioOptions:
        """The options Locust parsed; defaults for any it did not (or when run as a library)."""
        if parsed is None:
            return cls()
        values = {f.name: getattr(parsed, f.name) for f in fields(cls) if hasattr(parsed, f.name)}
        return cls(**values)


# name, type, help; defaults come from ScenarioOptions.
_OPTIONS: tuple[tuple[str, type, str], ...] = (
    ("seed", int, "seed for every generated payload and think time (repeatable runs)"),
    ("card-file", str, "read the model card from this card.json instead of GET /v1/model"),
    ("wait-min", float, "shortest think time between a user's requests, in seconds"),
    ("wait-max", float, "longest think time between a user's requests, in seconds"),
    ("batch-median-rows", int, "median rows per batch request (log-normal sizes)"),
    ("batch-max-rows", int, "largest batch sent (keep at or below the service's MAX_BATCH_ROWS)"),
    ("drift-feature", str, "feature DriftedPopulationUser shifts; naming one enables that user"),
    ("drift-shift", float, "drift size: a fraction of the feature's observed range (numbers, "
     "text lengths) or the share of mass moved to the rarest category"),
    ("shape", str, f"load shape, one of {', '.join(SHAPES)}"),
    ("shape-duration", float, "shape length in seconds when --run-time is not given"),
    ("steps", int, "number of steps of the step shape"),
    ("max-fail-ratio", float, "exit non-zero when the failure ratio exceeds this (1 = off)"),
    ("max-p95-ms", float, "exit non-zero when the overall p95 latency exceeds this (0 = off)"),
    ("max-p99-ms", float, "exit non-zero when the overall p99 latency exceeds this (0 = off)"),
)  # fmt: skip


def add_arguments(parser: Any) -> None:
    """Register the options on Locust's parser (an `events.init_command_line_parser` listener)."""
    defaults = ScenarioOptions()
    for name, kind, text in _OPTIONS:
        dest = name.replace("-", "_")
        default = getattr(defaults, dest)
        parser.add_argument(
            f"--{name}",
            type=kind,
            default=default,
            env_var=f"LOCUST_{dest.upper()}",
            help=f"{text} (default: {default!r})",
            **({"choices": SHAPES} if name == "shape" else {}),
        )
