"""Every Prometheus metric object of the service, defined here and nowhere else.

Names follow ../shared/ARCHITECTURE.md (OpenTelemetry HTTP semantic conventions where they exist).
Dashboards and alert rules are checked against these names by tests.

Only definitions live here; what the request path records, and how in each mode, is the
observability object's job (recording.py). In multiprocess mode every Gauge states how values
from several workers combine (`multiprocess_mode`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from lucidserve.bundle.card import DriftReference, NumericBins

# Sub-millisecond to 10 s: a fast model answers in a few ms, a slow dependency shows up at the top.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_ROWS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
MODEL_LABELS = ("model_name", "model_version")
HTTP_LABELS = ("http_request_method", "http_route", "http_response_status_code")
# Names used again outside their definition (exemplar keys, the drift cells): spelled once here.
REQUEST_DURATION = "http_server_request_duration_seconds"
INFERENCE_DURATION = "model_inference_duration_seconds"
DRIFT_OBSERVATIONS = "model_drift_observations"
DRIFT_OBSERVATIONS_DOC = "Observed samples per drift bin of each feature (and of the prediction)."
DRIFT_LABELS = (*MODEL_LABELS, "feature", "bin")


class CellCounts(Protocol):
    """Counters for a fixed list of label sets, added to a whole array at a time."""

    def add(self, counts: np.ndarray) -> None:
        """Add `counts[i]` to the i-th counter."""


class CounterCells:
    """A prometheus_client Counter child per cell: one `inc` per cell that counted (multiprocess
    mode, where each value lives in the worker's memory-mapped file)."""

    def __init__(self, children: list[Counter]) -> None:
        self._children = children

    def add(self, counts: np.ndarray) -> None:
        for cell in np.flatnonzero(counts).tolist():
            self._children[cell].inc(int(counts[cell]))


class ArrayCells(Collector):
    """One process: every cell's total in one int64 array, added to in one vectorized step and
    read at scrape time. A batch of n rows touches up to n x features cells, and a
    prometheus_client `inc` per cell cost about 0.6 µs (90 µs for an 8-row batch of the
    30-feature model); this costs about 1 µs whatever the batch. Same exposition as a Counter."""

    def __init__(
        self, name: str, doc: str, labels: Sequence[str], values: Sequence[tuple[str, ...]]
    ) -> None:
        self._name, self._doc, self._labels = name, doc, list(labels)
        self._values = values
        self._totals = np.zeros(len(values), dtype=np.int64)

    def add(self, counts: np.ndarray) -> None:
        # One writer (the inference thread, under the drift monitor's lock); a scrape reads
        # aligned int64 cells, each of which only grows.
        self._totals += counts

    def describe(self) -> Iterator[Metric]:
        return iter([CounterMetricFamily(self._name, self._doc, labels=self._labels)])

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._doc, labels=self._labels)
        for values, total in zip(self._values, self._totals.tolist(), strict=True):
            family.add_metric(values, total)
        return iter([family])


def shared_drift_counts(
    model_name: str, model_version: str, cells: Sequence[tuple[str, str]]
) -> CellCounts:
    """Several processes: a Counter child per cell, in this worker's memory-mapped files."""
    counter = Counter(DRIFT_OBSERVATIONS, DRIFT_OBSERVATIONS_DOC, DRIFT_LABELS, registry=None)
    return CounterCells([counter.labels(model_name, model_version, f, b) for f, b in cells])


def local_drift_counts(
    registry: CollectorRegistry,
    model_name: str,
    model_version: str,
    cells: Sequence[tuple[str, str]],
) -> CellCounts:
    """One process: every cell in one array, registered in `registry`."""
    values = [(model_name, model_version, feature, label) for feature, label in cells]
    counts = ArrayCells(DRIFT_OBSERVATIONS, DRIFT_OBSERVATIONS_DOC, DRIFT_LABELS, values)
    registry.register(counts)
    return counts


@dataclass(frozen=True)
class ServiceMetrics:
    """The service's metric objects, built once per process by `build_metrics`; model metrics
    are already bound to the model's name and version."""

    request_duration: Histogram
    active_requests: Gauge
    model_info: Gauge
    ready: Gauge
    inference_duration: Histogram
    queue_duration: Histogram
    batch_rows: Histogram
    queue_rows: Gauge
    confidence: Histogram | None
    """Classifiers only."""
    value: Histogram | None
    """Regressors only: the predicted values, in buckets from the reference's predictions."""
    shed: Counter
    expired: Counter
    errors: Counter
    stalled: Gauge
    predictions: Counter
    log_records_dropped: Counter


def value_buckets(reference: DriftReference | None) -> tuple[float, ...]:
    """A regressor's predicted-value buckets: the reference predictions' bin edges (near their
    deciles, bundle/reference.py), or prometheus_client's defaults without a reference."""
    if reference is not None and isinstance(reference.prediction, NumericBins):
        return tuple(reference.prediction.edges)
    return tuple(b for b in Histogram.DEFAULT_BUCKETS if b != float("inf"))


def build_metrics(
    registry: CollectorRegistry | None,
    model_name: str,
    model_version: str,
    value_buckets: tuple[float, ...] | None = None,
) -> ServiceMetrics:
    """Create every metric object, registered in `registry`. A regressor (`value_buckets` given)
    gets the predicted-value histogram, a classifier the confidence histogram.

    In multiprocess mode pass None: values live in the workers' files and /metrics reads them all.
    """
    reg = registry

    def model_histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
        metric = Histogram(name, doc, MODEL_LABELS, buckets=buckets, registry=reg)
        return metric.labels(model_name, model_version)

    def model_counter(name: str, doc: str) -> Counter:
        return Counter(name, doc, MODEL_LABELS, registry=reg).labels(model_name, model_version)

    def model_gauge(name: str, doc: str, mode: str) -> Gauge:
        gauge = Gauge(name, doc, MODEL_LABELS, registry=reg, multiprocess_mode=mode)  # type: ignore[arg-type]
        return gauge.labels(model_name, model_version)

    return ServiceMetrics(
        request_duration=Histogram(
            REQUEST_DURATION,
            "Duration of HTTP server requests, to the last byte of the response.",
            HTTP_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ),
        active_requests=Gauge(
            "http_server_active_requests",
            "Number of HTTP server requests in flight.",
            ("http_request_method",),
            registry=reg,
            multiprocess_mode="livesum",
        ),
        model_info=Gauge(
            "model_info",
            "The served model; always 1. Labels carry its identity.",
            (*MODEL_LABELS, "task", "sklearn_version", "reference_version"),
            registry=reg,
            multiprocess_mode="livemax",
        ),
        ready=model_gauge(
            "model_ready", "1 when the model is loaded and warmed up, 0 otherwise.", "livemin"
        ),
        inference_duration=model_histogram(
            INFERENCE_DURATION, "Duration of one predict_proba call on a batch.", LATENCY_BUCKETS
        ),
        queue_duration=model_histogram(
            "model_queue_duration_seconds",
            "Time a request's rows waited in the batching queue before inference began.",
            LATENCY_BUCKETS,
        ),
        batch_rows=model_histogram(
            "model_batch_rows", "Rows per predict_proba call.", BATCH_ROWS_BUCKETS
        ),
        queue_rows=model_gauge(
            "model_queue_rows", "Rows waiting for inference in the batching queue.", "livesum"
        ),
        confidence=None
        if value_buckets is not None
        else model_histogram(
            "model_prediction_confidence",
            "Probability of the predicted label, per predicted sample.",
            CONFIDENCE_BUCKETS,
        ),
        value=None
        if value_buckets is None
        else model_histogram(
            "model_prediction_value",
            "A regressor's predicted value, per predicted sample.",
            value_buckets,
        ),
        shed=model_counter(
            "model_requests_shed", "Requests refused with 503 because the inference queue was full."
        ),
        expired=model_counter(
            "model_requests_expired",
            "Requests answered 504 because their deadline passed while they were queued.",
        ),
        errors=model_counter(
            "model_inference_errors",
            "Inference calls that raised or answered with non-finite numbers.",
        ),
        stalled=model_gauge(
            "model_inference_stalled",
            "1 while the inference thread has made no progress for INFERENCE_STALL_SECONDS "
            "with work waiting.",
            "livemax",
        ),
        predictions=Counter(
            "model_predictions",
            "Predicted samples by predicted label.",
            (*MODEL_LABELS, "label"),
            registry=reg,
        ),
        log_records_dropped=Counter(
            "log_records_dropped",
            "Log lines dropped because stdout could not keep up (the log queue was full).",
            registry=reg,
        ),
    )
