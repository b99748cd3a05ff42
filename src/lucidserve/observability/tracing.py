"""OpenTelemetry tracing: the SDK provider, created in each worker after fork, and edge sampling.

Configured by the standard OTEL_* variables: OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER(_ARG),
OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, OTEL_SDK_DISABLED. When no sampler is named, the default is
parent-based ratio sampling at DEFAULT_SAMPLE_RATIO.

Edge sampling: with a parent-based sampler (the default, or any `parentbased_*` one), the sampling
decision is taken before FastAPI's telemetry runs, from the caller's `traceparent` flags or, for a
new trace, by the SDK's `TraceIdRatioBased` rule on a trace id drawn at the edge: the trace is
sampled when the id's lower 64 bits are below ratio x 2^64, so every service applying the rule to
the same trace decides alike. The drawn id becomes the trace's id (`EdgeTraceIds`, the provider's
id generator), and the SDK's own sampler (`ParentBased(TraceIdRatioBased(ratio))`) takes the same
decision again. A request not sampled skips FastAPI's telemetry altogether (`EdgeSampledApp`)
instead of building attributes and a non-recording span. Other samplers (`always_on`,
`traceidratio`, ...) are left to the SDK for every request.

The provider leaves the process's warning filters as they were (`FilterKeepingTracerProvider`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import Tracer
from opentelemetry.util.types import Attributes
from starlette.types import Receive, Scope, Send

from lucidserve import __version__

DEFAULT_SAMPLE_RATIO = 0.1
_EDGE_SAMPLERS = {"parentbased_traceidratio", "parentbased_always_on", "parentbased_always_off"}


@dataclass(frozen=True)
class Tracing:
    """The process's tracer provider (None when disabled) and the edge-sampling decision."""

    provider: TracerProvider | None
    skip_request: Callable[[MutableMapping[str, Any]], bool] | None


def create_tracing(model_name: str, model_version: str) -> Tracing:
    """A provider with the OTLP/HTTP exporter when an endpoint is configured."""
    # The OTEL_* variables are the SDK's own contract; reading them here is that library's demand.
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Tracing(provider=None, skip_request=None)
    resource = Resource.create(
        {
            "service.name": env.get("OTEL_SERVICE_NAME", "lucidserve"),
            "service.version": __version__,
            "model.name": model_name,
            "model.version": model_version,
        }
    )
    ratio = edge_sampling_ratio(env.get("OTEL_TRACES_SAMPLER"), env.get("OTEL_TRACES_SAMPLER_ARG"))
    edge = EdgeSampler(ratio) if ratio is not None else None
    sampler: Sampler | None = ParentBased(TraceIdRatioBased(ratio)) if ratio is not None else None
    provider = FilterKeepingTracerProvider(
        resource=resource,
        sampler=sampler,
        id_generator=edge.trace_ids if edge is not None else None,
        shutdown_on_exit=False,
    )
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracing(provider=provider, skip_request=edge.skip if edge is not None else None)


class FilterKeepingTracerProvider(TracerProvider):
    """The SDK's provider, except that `get_tracer` leaves `warnings.filters` as it found them.

    The SDK's `get_tracer` adds a process-wide filter for one of its own deprecation warnings, a
    DeprecationWarning that the default filters already hide. scikit-learn's forests re-apply
    every warning filter of the process for each tree on every `predict_proba` call (their joblib
    wrapper hands the caller's filters to each job), and a filter with a message pattern costs
    about 2 µs a tree: with this one, a 100-tree forest's call took 0.2 ms longer (3.65 ms
    against 3.45 ms), so tracing slowed the model itself.
    """

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> Tracer:
        with warnings.catch_warnings():  # restores the filters on the way out
            return super().get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )


def edge_sampling_ratio(sampler: str | None, argument: str | None) -> float | None:
    """The ratio of new traces to sample at the edge, or None to leave sampling to the SDK."""
    name = (sampler or "parentbased_traceidratio").strip().lower()
    if name not in _EDGE_SAMPLERS:
        return None
    if name == "parentbased_always_on":
        return 1.0
    if name == "parentbased_always_off":
        return 0.0
    default = DEFAULT_SAMPLE_RATIO if sampler is None else 1.0  # the SDK's default for a bad arg
    try:
        return min(1.0, max(0.0, float(argument))) if argument else default
    except ValueError:
        return default


class EdgeTraceIds(IdGenerator):
    """The SDK's random ids, except that a new trace takes the id its edge decision was made on."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self._chosen: ContextVar[int] = ContextVar("lucidserve_edge_trace_id", default=0)

    def draw(self) -> int:
        """A new random trace id."""
        return self._random.generate_trace_id()

    def use_next(self, trace_id: int) -> None:
        """Let the next trace started in this request's context take `trace_id`."""
        self._chosen.set(trace_id)

    def generate_trace_id(self) -> int:
        chosen = self._chosen.get()
        if chosen:
            self._chosen.set(0)
            return chosen
        return self._random.generate_trace_id()

    def generate_span_id(self) -> int:
        return self._random.generate_span_id()


class EdgeSampler:
    """Parent-based sampling decided from the request's headers and, for a new trace, from the
    trace id drawn for it (the `TraceIdRatioBased` rule)."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self._bound = TraceIdRatioBased.get_bound_for_rate(ratio)
        self.trace_ids = EdgeTraceIds()

    def skip(self, scope: MutableMapping[str, Any]) -> bool:
        """True when the request is not to be traced."""
        if scope["type"] != "http":
            return False
        for name, value in scope["headers"]:
            if name == b"traceparent":
                parts = value.split(b"-")
                if len(parts) >= 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
                    try:
                        return not int(parts[3][:2], 16) & 1  # the caller's sampled flag
                    except ValueError:
                        break
                break  # a malformed header starts a new trace, as the propagator does
        trace_id = self.trace_ids.draw()
        if trace_id & TraceIdRatioBased.TRACE_ID_LIMIT >= self._bound:
            return True
        self.trace_ids.use_next(trace_id)
        return False


class EdgeSampledApp(FastAPI):
    """FastAPI whose native telemetry never sees a request that `skip_tracing` leaves untraced.

    FastAPI's own `exclude` hook gives the same result, but FastAPI calls it only after its
    per-request dispatch: checking that telemetry is enabled, walking the middleware stack for the
    contrib instrumentation, and attaching and detaching an OpenTelemetry context, about 10 µs of
    every request (`make bench-costs`, B-untraced against B without traces). Here the request is
    marked before that, the way FastAPI marks an excluded one (`scope["fastapi.telemetry"] = None`,
    which its dispatch reads as "observed elsewhere or excluded"), and FastAPI serves it as if
    telemetry were off. This is the one place that relies on that FastAPI internal:
    tests/test_library_contracts.py names FastAPI if an upgrade stops honouring it, and
    tests/test_tracing.py checks end to end that an unsampled request makes no span while a
    sampled caller's trace is continued.
    """

    skip_tracing: Callable[[MutableMapping[str, Any]], bool] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        skip = self.skip_tracing
        if skip is not None and "fastapi.telemetry" not in scope and skip(scope):
            scope["fastapi.telemetry"] = None
        await super().__call__(scope, receive, send)
