"""What the benchmark compares (service configurations, as `serve`'s environment) and the targets
its ratios are checked against: data, read by bench/run.py and bench/report.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Config:
    """One way of running the service: a key for the table, the environment that makes it, and
    the API the one-row request goes through (`v1`, or `v2`: the Open Inference Protocol)."""

    key: str
    description: str
    env: Mapping[str, str] = field(default_factory=dict)
    protocol: Literal["v1", "v2"] = "v1"


OBSERVABILITY_OFF = Config(
    "A",
    "observability off (no metrics, prediction log, access log, drift, traces); batching on",
    {
        "LUCIDSERVE_METRICS_ENABLED": "false",
        "LUCIDSERVE_PREDICTION_LOG": "false",
        "LUCIDSERVE_DRIFT_ENABLED": "false",
        "LUCIDSERVE_ACCESS_LOG_SAMPLE_RATIO": "0",
        "OTEL_SDK_DISABLED": "true",
    },
)
OBSERVABILITY_ON = Config(
    "B",
    "defaults: metrics, a log line per sample, access log, drift, traces at 10 %; batching on",
)
UNBATCHED = Config(
    "C", "B with batching off (one estimator call per request)", {"LUCIDSERVE_BATCHING": "false"}
)
# B with one thing changed: what each part of observability costs is B minus B without it.
VARIANTS = (
    Config("B-traced", "B with every request traced", {"OTEL_TRACES_SAMPLER_ARG": "1"}),
    Config("B-untraced", "B with no request traced", {"OTEL_TRACES_SAMPLER_ARG": "0"}),
    Config("B-traces", "B without traces", {"OTEL_SDK_DISABLED": "true"}),
    Config(
        "B-prediction-log", "B without prediction lines", {"LUCIDSERVE_PREDICTION_LOG": "false"}
    ),
    Config("B-access-log", "B without access lines", {"LUCIDSERVE_ACCESS_LOG_SAMPLE_RATIO": "0"}),
    Config("B-drift", "B without drift", {"LUCIDSERVE_DRIFT_ENABLED": "false"}),
    Config(
        "B-metrics",
        "B without metrics (drift needs them: off too)",
        {"LUCIDSERVE_METRICS_ENABLED": "false"},
    ),
    Config(
        "B-v2",
        "B, the same one-row request as JSON tensors through the Open Inference Protocol",
        protocol="v2",
    ),
    # Not a B at all: the per-sample parts alone, a bound on what B/A can reach with any default
    # trace or access-line sampling.
    Config(
        "B-core",
        "B without traces or access lines: prediction lines, metrics and drift only",
        {"OTEL_SDK_DISABLED": "true", "LUCIDSERVE_ACCESS_LOG_SAMPLE_RATIO": "0"},
    ),
)
CONFIGS: dict[str, Config] = {
    c.key: c for c in (OBSERVABILITY_OFF, OBSERVABILITY_ON, UNBATCHED, *VARIANTS)
}
ALL_VARIANTS = "variants"  # in a --configs list: every one of B's variants


@dataclass(frozen=True)
class Target:
    """A bound on one column of the ratios table (bench/report.py) at one concurrency, for the
    models named in `models` (every model when empty). Informational: never an exit code."""

    ratio: str
    concurrency: int
    op: str  # ">=" or "<="
    bound: float
    models: tuple[str, ...] = ()

    def holds(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound


TARGETS = (
    Target("B/A req/s", 64, ">=", 0.90),
    # iris trains a 100-tree forest, whose per-call overhead batching amortizes.
    Target("B/C req/s", 64, ">=", 6.0, models=("iris",)),
    Target("B/C p50", 1, "<=", 1.10),
)


def find_configs(text: str) -> list[Config]:
    """The configurations named in a comma-separated list (any case, `variants` for all of B's
    variants); ValueError if one is unknown."""
    by_name = {key.lower(): config for key, config in CONFIGS.items()}
    names: list[str] = []
    for name in (k.strip().lower() for k in text.split(",") if k.strip()):
        names += [c.key.lower() for c in VARIANTS] if name == ALL_VARIANTS else [name]
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        choices = ",".join([*CONFIGS, ALL_VARIANTS])
        raise ValueError(f"configurations are some of {choices}; got {text!r}")
    return [by_name[n] for n in dict.fromkeys(names)]


# The caller's variables that would change a configuration: the bench removes them first.
CONTROLLED_PREFIXES = ("LUCIDSERVE_", "OTEL_", "PROMETHEUS_MULTIPROC_DIR")


def service_env(config: Config, otlp_endpoint: str | None) -> dict[str, str]:
    """The configuration's variables; with an OTLP endpoint, those that trace (all but A and the
    SDK-off variants) export there."""
    env = dict(config.env)
    if otlp_endpoint and env.get("OTEL_SDK_DISABLED") != "true":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
    return env
