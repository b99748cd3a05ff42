"""The OpenTelemetry tracer provider, created in each worker after fork.

Configured by the standard OTEL_* variables, which the SDK reads itself: OTEL_SERVICE_NAME,
OTEL_TRACES_SAMPLER(_ARG), OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, OTEL_SDK_DISABLED. When no sampler
is named, the default is parent-based ratio sampling at DEFAULT_SAMPLE_RATIO.
"""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from lucidserve import __version__

DEFAULT_SAMPLE_RATIO = 0.1


def create_tracer_provider(model_name: str, model_version: str) -> TracerProvider | None:
    """A provider with the OTLP/HTTP exporter when an endpoint is configured; None if disabled."""
    # The OTEL_* variables are the SDK's own contract; reading them here is that library's demand.
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", "lucidserve"),
            "service.version": __version__,
            "model.name": model_name,
            "model.version": model_version,
        }
    )
    provider = TracerProvider(resource=resource, sampler=_sampler(), shutdown_on_exit=False)
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _sampler() -> Sampler | None:
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None  # the SDK builds the named sampler from the environment
    ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", DEFAULT_SAMPLE_RATIO))
    return ParentBased(TraceIdRatioBased(ratio))
