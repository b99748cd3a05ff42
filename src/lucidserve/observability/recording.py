"""The observability object: what the request path records, built once per process.

`build_observability` chooses one implementation from the settings and the process's metrics
mode, and nothing else looks at the mode again:

- `Observability` (metrics off): log lines as configured, every metric method a no-op;
- `ProcessObservability` (one process): metrics in an in-process registry, exemplars stored by
  prometheus_client with each observation, drift cells in one array;
- `PooledObservability` (several worker processes, prometheus_client's multiprocess mode): the
  same metrics in the workers' memory-mapped files, exemplars in this service's own files
  (exemplars.py), drift cells as Counter children, the drift window shared through files.

The request path (middleware, routes, the inference queue) calls the intention-named methods
(`record_request`, `record_batch`, `record_predictions`, ...) and never checks a mode or reads the
environment. The object owns the label children, the exemplars, the drift monitor and the sink
that event lines go to.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Gauge, Histogram, disable_created_metrics
from starlette.types import Scope

from lucidserve.bundle.card import ModelCard
from lucidserve.inference.predictor import Predictions
from lucidserve.observability.drift import WINDOW_SUBDIR, DriftMonitor
from lucidserve.observability.exemplars import ExemplarStore, bucket_key
from lucidserve.observability.exposition import PooledCollector
from lucidserve.observability.hashing import input_hasher
from lucidserve.observability.lines import EventLogger, EventSink, sampled_trace_id
from lucidserve.observability.metrics import (
    INFERENCE_DURATION,
    LATENCY_BUCKETS,
    REQUEST_DURATION,
    CellCounts,
    build_metrics,
    local_drift_counts,
    shared_drift_counts,
    value_buckets,
)
from lucidserve.settings import Settings

ACCESS_LOGGER = "lucidserve.access"
PREDICTION_LOGGER = "lucidserve.predictions"


def build_observability(
    settings: Settings,
    card: ModelCard,
    *,
    shared_directory: Path | None,
    events: EventSink | None,
    clock: Callable[[], float] = time.time,
) -> Observability:
    """The process's observability: off, one process, or one of several workers sharing
    `shared_directory` (server/multiprocess.py decides); event lines go to `events` (the log
    pipeline's sink; None: through `logging`). `clock` is the drift window's."""
    if not settings.metrics_enabled:
        return Observability(settings, card, events)
    # `*_created` series double the exposition and no dashboard or rule reads them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    if shared_directory is None:
        return ProcessObservability(settings, card, events, clock)
    return PooledObservability(settings, card, events, clock, shared_directory)


@dataclass(frozen=True)
class AccessLogPolicy:
    """Which access lines to write: all errors and slow requests, a sample of the rest."""

    sample_ratio: float
    slow_seconds: float

    def keep(self, status: int, seconds: float) -> bool:
        if status >= 400 or seconds >= self.slow_seconds:
            return True
        return self.sample_ratio >= 1.0 or random.random() < self.sample_ratio  # noqa: S311


class Observability:
    """Observability with metrics off: the access and prediction lines, nothing else."""

    exposition: CollectorRegistry | None = None
    """What /metrics and the model page read (None: metrics are off)."""
    drift: DriftMonitor | None = None

    def __init__(self, settings: Settings, card: ModelCard, events: EventSink | None) -> None:
        self.card = card
        self.access_policy = AccessLogPolicy(
            sample_ratio=settings.access_log_sample_ratio,
            slow_seconds=settings.slow_request_seconds,
        )
        self._access_lines = EventLogger(ACCESS_LOGGER, events)
        self._prediction_lines = EventLogger(PREDICTION_LOGGER, events)
        self._log_predictions = settings.prediction_log
        self._log_inputs = settings.log_inputs
        key = settings.input_hash_key
        self._hash_input = input_hasher(key.get_secret_value().encode() if key else None)

    # -- the request ---------------------------------------------------------------------

    def request_started(self, method: str) -> None:
        """A request came in (the in-flight gauge)."""

    def record_request(
        self, scope: Scope, method: str, route: str, status: int, seconds: float, request_id: str
    ) -> None:
        """A request finished: its duration (exemplified by its trace when sampled) and its
        access line (all errors and slow requests, a sample of the rest)."""
        if self.access_policy.keep(status, seconds):
            client = scope.get("client")
            self._access_lines.emit(
                logging.ERROR if status >= 500 else logging.INFO,
                "request",
                {
                    "event": "access",
                    "request_id": request_id,
                    "http_request_method": method,
                    "http_route": route,
                    "url_path": scope["path"],
                    "http_response_status_code": status,
                    "latency_ms": round(seconds * 1000.0, 3),
                    "client_address": client[0] if client else None,
                },
            )

    def record_predictions(
        self,
        request_id: str,
        samples: Sequence[dict[str, Any]],
        predictions: Predictions,
        started: float | None,
    ) -> None:
        """A request's predictions: a classifier's counted by label with their confidences, a
        regressor's values in a histogram; a log line per sample (`label` and `probability`, or
        `value`)."""
        if not self._log_predictions or not self._prediction_lines.enabled():
            return
        labels, confidences = predictions.labels, predictions.confidences
        values = predictions.values
        latency_ms = round((time.perf_counter() - started) * 1000.0, 3) if started else None
        card = self.card
        for i, sample in enumerate(samples):
            fields: dict[str, Any] = {
                "event": "prediction",
                "request_id": request_id,
                "model_name": card.name,
                "model_version": card.version,
                "input_hash": self._hash_input(sample),
                "input_hash_scheme": self._hash_input.scheme,
            }
            if values is not None:
                fields["value"] = values[i]
            else:
                assert labels is not None
                fields["label"] = labels[i]
                fields["probability"] = confidences[i] if confidences is not None else None
            fields["latency_ms"] = latency_ms
            if self._log_inputs:
                fields["inputs"] = sample
            self._prediction_lines.emit(logging.INFO, "prediction", fields)

    # -- the inference queue -------------------------------------------------------------

    def record_queue_wait(self, seconds: float) -> None:
        """How long a request's rows waited before inference began."""

    def record_batch(self, rows: int, seconds: float, trace_id: str | None) -> None:
        """One estimator call: its rows and duration, exemplified by a trace of its batch."""

    def record_drift(self, columns: Mapping[str, np.ndarray], predictions: np.ndarray) -> None:
        """Count a predicted batch per drift bin (called on the inference thread)."""

    def count_shed(self) -> None:
        """A request refused because the queue was full."""

    def count_expired(self) -> None:
        """A request whose deadline passed in the queue."""

    def count_inference_error(self) -> None:
        """An estimator call that raised or answered with non-finite numbers."""

    def set_queue_rows(self, rows: int) -> None:
        """Rows waiting for inference."""

    def set_stalled(self, stalled: bool) -> None:
        """Whether the inference thread is stalled."""

    # -- the process ---------------------------------------------------------------------

    def set_ready(self, ready: bool) -> None:
        """Whether the model is loaded, warm and not draining."""

    def model_loaded(self) -> None:
        """The model is loaded: `model_info` shows its identity."""

    def count_log_drop(self) -> None:
        """A log line dropped because stdout could not keep up."""


class ProcessObservability(Observability):
    """Metrics in this process's registry; exemplars go with each observation."""

    def __init__(
        self,
        settings: Settings,
        card: ModelCard,
        events: EventSink | None,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(settings, card, events)
        self._clock = clock
        self.exposition = CollectorRegistry()
        self._metrics = m = build_metrics(
            self._metrics_registry(),
            card.name,
            card.version,
            value_buckets(card.drift) if card.classes is None else None,
        )
        self._request_duration = m.request_duration
        self._active = m.active_requests
        # The request's label children, by the values the request gives. prometheus_client's
        # labels() keeps them too, but validates and takes a lock on every call: 1.5 to 3 µs,
        # three times a request, which `make bench` shows as B's CPU per request.
        self._durations: dict[tuple[str, str, int], Histogram] = {}
        self._actives: dict[str, Gauge] = {}
        # Only a declared class is ever a label value: a regressor's values, or a label the model
        # was not declared with, never make a series (and every class's series starts at 0).
        model = (card.name, card.version)
        self._predicted = {c: m.predictions.labels(*model, c) for c in card.classes or ()}
        self.drift = self._drift_monitor(settings)
        if self.drift is not None:
            self.exposition.register(self.drift.collector())
            self.record_drift = self.drift.observe  # type: ignore[method-assign]

    def _metrics_registry(self) -> CollectorRegistry | None:
        return self.exposition

    def _drift_monitor(self, settings: Settings) -> DriftMonitor | None:
        if not settings.drift_enabled or self.card.drift is None:
            return None
        return DriftMonitor(
            self.card.drift,
            self.card.features,
            settings,
            model=(self.card.name, self.card.version),
            count_cells=self._drift_counts,
            window_dir=self._drift_window_dir(),
            clock=self._clock,
        )

    def _drift_counts(self, cells: Sequence[tuple[str, str]]) -> CellCounts:
        assert self.exposition is not None
        return local_drift_counts(self.exposition, self.card.name, self.card.version, cells)

    def _drift_window_dir(self) -> Path | None:
        return None  # the window lives in this process's memory

    def _exemplify(
        self, child: Histogram, name: str, labels: dict[str, str], seconds: float, trace_id: str
    ) -> None:
        """Observe `seconds` on the child of histogram `name` with `labels`, and `trace_id` as
        its bucket's exemplar."""
        child.observe(seconds, {"trace_id": trace_id})

    def request_started(self, method: str) -> None:
        self._active_child(method).inc()

    def record_request(
        self, scope: Scope, method: str, route: str, status: int, seconds: float, request_id: str
    ) -> None:
        self._active_child(method).dec()
        key = (method, route, status)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = self._request_duration.labels(method, route, status)
        trace_id = sampled_trace_id()
        if trace_id is None:
            child.observe(seconds)
        else:
            labels = {
                "http_request_method": method,
                "http_route": route,
                "http_response_status_code": str(status),
            }
            self._exemplify(child, REQUEST_DURATION, labels, seconds, trace_id)
        super().record_request(scope, method, route, status, seconds, request_id)

    def _active_child(self, method: str) -> Gauge:
        child = self._actives.get(method)
        if child is None:
            child = self._actives[method] = self._active.labels(method)
        return child

    def record_predictions(
        self,
        request_id: str,
        samples: Sequence[dict[str, Any]],
        predictions: Predictions,
        started: float | None,
    ) -> None:
        labels, confidences = predictions.labels, predictions.confidences
        values = predictions.values
        if labels is not None:
            predicted = self._predicted
            for label in labels:
                child = predicted.get(label)
                if child is not None:
                    child.inc()
        confidence, value = self._metrics.confidence, self._metrics.value
        if confidences is not None and confidence is not None:
            for observed in confidences:
                confidence.observe(observed)
        if values is not None and value is not None:
            for observed in values:
                value.observe(observed)
        super().record_predictions(request_id, samples, predictions, started)

    def record_queue_wait(self, seconds: float) -> None:
        self._metrics.queue_duration.observe(seconds)

    def record_batch(self, rows: int, seconds: float, trace_id: str | None) -> None:
        self._metrics.batch_rows.observe(rows)
        duration = self._metrics.inference_duration
        if trace_id is None:
            duration.observe(seconds)
        else:
            model = {"model_name": self.card.name, "model_version": self.card.version}
            self._exemplify(duration, INFERENCE_DURATION, model, seconds, trace_id)

    def count_shed(self) -> None:
        self._metrics.shed.inc()

    def count_expired(self) -> None:
        self._metrics.expired.inc()

    def count_inference_error(self) -> None:
        self._metrics.errors.inc()

    def set_queue_rows(self, rows: int) -> None:
        self._metrics.queue_rows.set(rows)

    def set_stalled(self, stalled: bool) -> None:
        self._metrics.stalled.set(1 if stalled else 0)

    def set_ready(self, ready: bool) -> None:
        self._metrics.ready.set(1 if ready else 0)

    def model_loaded(self) -> None:
        card = self.card
        reference_version = card.drift.version if card.drift is not None else "none"
        self._metrics.model_info.labels(
            card.name, card.version, card.task, card.sklearn_version, reference_version
        ).set(1)

    def count_log_drop(self) -> None:
        self._metrics.log_records_dropped.inc()


class PooledObservability(ProcessObservability):
    """One of several workers: metrics in prometheus_client's multiprocess files, which /metrics
    merges (with this service's exemplar files) in whichever process answers it."""

    def __init__(
        self,
        settings: Settings,
        card: ModelCard,
        events: EventSink | None,
        clock: Callable[[], float],
        shared_directory: Path,
    ) -> None:
        self._shared = shared_directory
        self._exemplars = ExemplarStore(shared_directory)
        super().__init__(settings, card, events, clock)
        assert self.exposition is not None
        self.exposition.register(PooledCollector(shared_directory))

    def _metrics_registry(self) -> CollectorRegistry | None:
        return None  # multiprocess: values go to this worker's files, not a registry

    def _drift_counts(self, cells: Sequence[tuple[str, str]]) -> CellCounts:
        return shared_drift_counts(self.card.name, self.card.version, cells)

    def _drift_window_dir(self) -> Path | None:
        return self._shared / WINDOW_SUBDIR

    def _exemplify(
        self, child: Histogram, name: str, labels: dict[str, str], seconds: float, trace_id: str
    ) -> None:
        # The files keep no exemplars: this service's own store does (exemplars.py).
        child.observe(seconds)
        key = bucket_key(f"{name}_bucket", labels, LATENCY_BUCKETS, seconds)
        self._exemplars.record(key, trace_id, seconds)
