"""Drift monitoring: count live traffic per reference bin, and report drift statistics.

`DriftMonitor.observe` runs once per predicted batch: it bins every feature and the prediction
(one searchsorted per feature), increments `model_drift_observations_total{feature,bin}` (exact
sums across workers and replicas, for Prometheus-side statistics) and adds the same counts to the
sliding-window ring (drift_window.py) that every worker can read.

The statistics (drift_stats.py) are computed when asked, by `collector()` at scrape time and by
`summary()` for GET /v1/drift, from the window's counts pooled over all workers: never per worker
(PSI is not linear in the counts, so averaging per-worker values would overstate it).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lucidserve.bundle.card import DriftReference, FeatureSpec
from lucidserve.observability.drift_bins import FeatureBins, NumericBlock, compile_reference
from lucidserve.observability.drift_stats import DriftStatistics, evaluate
from lucidserve.observability.drift_window import LocalWindow, SharedWindow, WindowLayout
from lucidserve.observability.metrics import CellCounts
from lucidserve.settings import Settings

WINDOW_SUBDIR = "drift-window"
DEFAULT_SLOTS = 60


class DriftMonitor:
    """Counts each predicted batch per drift bin and reports PSI and chi-square p-values."""

    def __init__(
        self,
        reference: DriftReference,
        features: Sequence[FeatureSpec],
        settings: Settings,
        *,
        model: tuple[str, str],
        count_cells: Callable[[Sequence[tuple[str, str]]], CellCounts],
        window_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Compile the reference for `model` (name, version); `count_cells` makes the
        `model_drift_observations_total` counters of the (feature, bin) cells. The window is
        shared through files in `window_dir` (several workers), or kept in memory (None)."""
        self.bins = compile_reference(reference, features)
        self._numeric = NumericBlock([b for b in self.bins[:-1] if b.kind == "numeric"])
        self._other_bins = [b for b in self.bins[:-1] if b.kind != "numeric"]
        self.reference_version = reference.version
        self.epsilon = reference.epsilon
        self.settings = settings
        self.model_name, self.model_version = model
        slot_seconds = settings.drift_slot_seconds or settings.drift_window_seconds / DEFAULT_SLOTS
        cell_names = [f"{b.feature}\x00{label}" for b in self.bins for label in b.labels]
        self.layout = WindowLayout.build(settings.drift_window_seconds, slot_seconds, cell_names)
        self.window: LocalWindow | SharedWindow = (
            SharedWindow(self.layout, window_dir) if window_dir else LocalWindow(self.layout)
        )
        self._clock = clock
        # Every bin's series exists from the start, at 0 (rate() works).
        self._counters = count_cells([(b.feature, label) for b in self.bins for label in b.labels])
        self._lock = threading.Lock()

    def observe(self, columns: Mapping[str, np.ndarray], predictions: np.ndarray) -> None:
        """Count one predicted batch: `columns` maps feature name to values, one per row."""
        indices = [self._numeric.cells(columns)] if self._numeric.features else []
        indices += [b.offset + b.bin_index(columns[b.feature]) for b in self._other_bins]
        indices.append(self.bins[-1].offset + self.bins[-1].bin_index(predictions))
        counts = np.bincount(np.concatenate(indices), minlength=self.layout.cells)
        self.window.add(counts, self._clock())
        with self._lock:
            self._counters.add(counts)

    def statistics(self) -> list[tuple[FeatureBins, np.ndarray, DriftStatistics]]:
        """Each tracked feature with its window counts and statistics, pooled over all workers."""
        totals = self.window.totals(self._clock())
        s = self.settings
        return [
            (
                b,
                totals[b.cells],
                evaluate(
                    totals[b.cells],
                    b.proportions,
                    epsilon=self.epsilon,
                    min_samples=s.drift_min_samples,
                    warn_psi=s.drift_warn_psi,
                    alert_psi=s.drift_alert_psi,
                ),
            )
            for b in self.bins
        ]

    def collector(self) -> Collector:
        """A collector of the drift gauges, computed at each scrape from the pooled window."""
        return DriftCollector(self)

    def summary(self) -> dict[str, Any]:
        """The GET /v1/drift body: per feature PSI, p-value, observations, status, bins."""
        features: dict[str, Any] = {}
        statuses = []
        for b, counts, stat in self.statistics():
            statuses.append(stat.status)
            total = max(int(counts.sum()), 1)
            features[b.feature] = {
                "kind": b.kind,
                "observations": stat.observations,
                "psi": stat.psi,
                "pvalue": stat.pvalue,
                "status": stat.status,
                "bins": [
                    {"bin": label, "reference": float(ref), "observed": int(n) / total}
                    for label, ref, n in zip(b.labels, b.proportions, counts.tolist(), strict=True)
                ],
            }
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "reference_version": self.reference_version,
            "status": _overall(statuses),
            "window_seconds": self.layout.slots * self.layout.slot_seconds,
            "slot_seconds": self.layout.slot_seconds,
            "min_samples": self.settings.drift_min_samples,
            "warn_psi": self.settings.drift_warn_psi,
            "alert_psi": self.settings.drift_alert_psi,
            "epsilon": self.epsilon,
            "features": features,
        }


class DriftCollector(Collector):
    """model_drift_* gauges; PSI and p-value are NaN while a window has too few observations."""

    def __init__(self, monitor: DriftMonitor) -> None:
        self.monitor = monitor

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        psi, pvalue, observations, insufficient, ratio = families = self._families()
        model = [self.monitor.model_name, self.monitor.model_version]
        for b, _counts, stat in self.monitor.statistics():
            labels = [*model, b.feature]
            psi.add_metric(labels, _number(stat.psi))
            pvalue.add_metric(labels, _number(stat.pvalue))
            observations.add_metric(labels, stat.observations)
            insufficient.add_metric(labels, 1.0 if stat.psi is None else 0.0)
            for label, proportion in zip(b.labels, b.proportions.tolist(), strict=True):
                ratio.add_metric([*labels, label], proportion)
        return iter(families)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        labels = ["model_name", "model_version", "feature"]
        return [
            GaugeMetricFamily(
                "model_drift_psi",
                "Population stability index of the sliding window against the reference "
                "(proportions clamped to epsilon 1e-4); NaN while the window has too few samples.",
                labels=labels,
            ),
            GaugeMetricFamily(
                "model_drift_pvalue",
                "Chi-square goodness-of-fit p-value of the window's bin counts against the "
                "reference proportions; NaN while the window has too few samples.",
                labels=labels,
            ),
            GaugeMetricFamily(
                "model_drift_window_observations",
                "Observations in the sliding window, pooled over all workers of this instance.",
                labels=labels,
            ),
            GaugeMetricFamily(
                "model_drift_insufficient_data",
                "1 when the sliding window holds fewer than the minimum samples for statistics.",
                labels=labels,
            ),
            GaugeMetricFamily(
                "model_drift_reference_ratio",
                "Proportion of the reference data in each drift bin (unclamped).",
                labels=[*labels, "bin"],
            ),
        ]


def _number(value: float | None) -> float:
    return math.nan if value is None else value


def _overall(statuses: Sequence[str]) -> str:
    for status in ("alert", "warn", "insufficient_data"):
        if status in statuses:
            return status
    return "ok"
