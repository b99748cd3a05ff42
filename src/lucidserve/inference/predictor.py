"""The predictor: validated samples in, labels and probabilities out, one estimator call a batch."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lucidserve.bundle.card import ModelCard
from lucidserve.bundle.package import model_input

Sample = Mapping[str, Any]
DriftObserver = Callable[[Mapping[str, np.ndarray], np.ndarray], None]


@dataclass(frozen=True)
class BatchResult:
    """Predictions for consecutive rows; `select` cuts out one request's rows."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    values: np.ndarray | None
    inference_seconds: float

    def select(self, start: int, stop: int) -> BatchResult:
        return BatchResult(
            labels=self.labels[start:stop],
            probabilities=None if self.probabilities is None else self.probabilities[start:stop],
            values=None if self.values is None else self.values[start:stop],
            inference_seconds=self.inference_seconds,
        )


class Predictor:
    """Wraps a fitted estimator with the card's feature order and input format."""

    def __init__(
        self, card: ModelCard, estimator: Any, observe_drift: DriftObserver | None = None
    ) -> None:
        self.card = card
        self._estimator = estimator
        self._observe_drift = observe_drift
        self._names = [f.name for f in card.features]
        self._numeric = [f.type == "number" for f in card.features]
        self.classes = np.asarray(card.classes, dtype=object) if card.classes else None
        self._proba = self.classes is not None and hasattr(estimator, "predict_proba")

    def columns(self, samples: Sequence[Sample]) -> dict[str, np.ndarray]:
        """Samples as one array per feature (float64 for numbers, object otherwise)."""
        out: dict[str, np.ndarray] = {}
        for name, numeric in zip(self._names, self._numeric, strict=True):
            if numeric:
                out[name] = np.fromiter((s[name] for s in samples), np.float64, len(samples))
            else:
                out[name] = np.array([s[name] for s in samples], dtype=object)
        return out

    def predict(self, samples: Sequence[Sample]) -> BatchResult:
        """Predict every sample in one estimator call, then count the batch for drift."""
        columns = self.columns(samples)
        x = model_input([columns[n] for n in self._names], self.card.input_format)
        started = time.perf_counter()
        if self._proba:
            assert self.classes is not None
            probabilities = np.asarray(self._estimator.predict_proba(x), dtype=np.float64)
            elapsed = time.perf_counter() - started
            labels = self.classes[probabilities.argmax(axis=1)]
            result = BatchResult(labels, probabilities, None, elapsed)
        else:
            values = np.asarray(self._estimator.predict(x), dtype=np.float64)
            elapsed = time.perf_counter() - started
            result = BatchResult(values.astype(str), None, values, elapsed)
        if self._observe_drift is not None:
            self._observe_drift(
                columns, result.values if result.values is not None else result.labels
            )
        return result
