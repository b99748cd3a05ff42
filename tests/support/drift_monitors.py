"""DriftMonitor objects for tests: a fake clock, a monitor with its own registry, a worker process.

Kept free of scikit-learn so that a spawned worker process starts quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from lucidserve.bundle.card import ModelCard
from lucidserve.observability.drift import DriftMonitor
from lucidserve.observability.metrics import local_drift_counts
from lucidserve.settings import Settings

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


class FakeClock:
    """A clock that moves only when the test moves it."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_monitor(
    card: ModelCard,
    clock: FakeClock | None = None,
    window_dir: Path | None = None,
    **settings: Any,
) -> tuple[DriftMonitor, CollectorRegistry]:
    """A monitor for `card` whose collector is registered on a fresh registry."""
    registry = CollectorRegistry()
    assert card.drift is not None
    monitor = DriftMonitor(
        card.drift,
        card.features,
        Settings(**settings),
        model=(card.name, card.version),
        count_cells=lambda cells: local_drift_counts(registry, card.name, card.version, cells),
        window_dir=window_dir,
        clock=clock or FakeClock(),
    )
    registry.register(monitor.collector())
    return monitor, registry


def send(monitor: DriftMonitor, rows: np.ndarray, batch: int = 100) -> None:
    """Observe iris `rows` in batches; the prediction is a fixed label (not what is tested)."""
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        columns = {name: np.ascontiguousarray(chunk[:, i]) for i, name in enumerate(FEATURES)}
        monitor.observe(columns, np.full(len(chunk), "versicolor", dtype=object))


def count_as_worker(card_json: str, directory: Path, rows: np.ndarray, now: float) -> None:
    """Run in a separate process: one worker's monitor counting its share of the traffic."""
    monitor, _ = make_monitor(
        ModelCard.model_validate_json(card_json), FakeClock(now), window_dir=directory
    )
    send(monitor, rows)
