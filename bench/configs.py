"""The service configurations the benchmark compares, as environment variables for `serve`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Config:
    """One way of running the service: a key for the table and the environment that makes it."""

    key: str
    description: str
    env: Mapping[str, str] = field(default_factory=dict)


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
    "C",
    "B with batching off (one estimator call per request)",
    {"LUCIDSERVE_BATCHING": "false"},
)
# B with one thing changed: what each part of observability costs (B minus B without it).
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


def find_configs(text: str) -> list[Config]:
    """The configurations named in a comma-separated list (any case); ValueError if unknown."""
    by_name = {key.lower(): config for key, config in CONFIGS.items()}
    names = [k.strip().lower() for k in text.split(",") if k.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        raise ValueError(f"configurations are some of {','.join(CONFIGS)}; got {text!r}")
    return [by_name[n] for n in names]


# Caller's variables that would change a configuration: removed before each start.
CONTROLLED_PREFIXES = ("LUCIDSERVE_", "OTEL_", "PROMETHEUS_MULTIPROC_DIR")


def service_env(
    base: Mapping[str, str], config: Config, otlp_endpoint: str | None
) -> dict[str, str]:
    """The server's environment: the caller's, minus service settings, plus the configuration's.

    With an OTLP endpoint, the configurations that trace (all but A) export there.
    """
    env = {k: v for k, v in base.items() if not k.startswith(CONTROLLED_PREFIXES)}
    env.update(config.env)
    if otlp_endpoint and env.get("OTEL_SDK_DISABLED") != "true":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
    return env
