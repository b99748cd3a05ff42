"""The predictor: validated samples in, labels and probabilities out, one estimator call a batch."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lucidserve.bundle.card import ModelCard
from lucidserve.bundle.inputs import model_input

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


class RejectedInput(Exception):  # noqa: N818 - the request's fault, not the service's
    """The estimator raised on these samples, or answered them with non-finite numbers."""

    def __init__(self, reason: str, sample: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sample = sample


class Predictor:
    """Wraps a fitted estimator with the card's feature order and input format."""

    def __init__(
        self, card: ModelCard, estimator: Any, observe_drift: DriftObserver | None = None
    ) -> None:
        """`observe_drift` sees each predicted batch's columns and predictions (the
        observability object's `record_drift`)."""
        self.card = card
        self._estimator = estimator
        self._observe_drift = observe_drift or _ignore_batch
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
        """Predict every sample in one estimator call, then count the batch for drift.

        Raises RejectedInput when the estimator raises or answers with a non-finite number: with
        validated input, that is the request's data, not the service, at fault.
        """
        columns = self.columns(samples)
        x = model_input([columns[n] for n in self._names], self.card.input_format)
        started = time.perf_counter()
        try:
            if self._proba:
                output = np.asarray(self._estimator.predict_proba(x), dtype=np.float64)
            else:
                output = np.asarray(self._estimator.predict(x), dtype=np.float64)
        except Exception as exc:
            raise RejectedInput(_reason(exc)) from exc
        elapsed = time.perf_counter() - started
        if not np.isfinite(output).all():
            raise RejectedInput("the model answered with a number that is not finite")
        if self._proba:
            assert self.classes is not None
            result = BatchResult(self.classes[output.argmax(axis=1)], output, None, elapsed)
        else:
            result = BatchResult(output.astype(str), None, output, elapsed)
        self._observe_drift(columns, result.values if result.values is not None else result.labels)
        return result

    def locate_rejected(self, samples: Sequence[Sample], reason: str) -> RejectedInput:
        """The rejection with the index of one sample the estimator refuses alone, when there is
        one: bisection, about log2(n) calls on the failing half."""
        offset, rows = 0, samples
        while len(rows) > 1:
            half = len(rows) // 2
            if self._refuses(rows[:half]):
                rows = rows[:half]
            elif self._refuses(rows[half:]):
                offset, rows = offset + half, rows[half:]
            else:
                return RejectedInput(reason)  # only the combination fails
        return RejectedInput(reason, offset)

    def _refuses(self, samples: Sequence[Sample]) -> bool:
        columns = self.columns(samples)
        x = model_input([columns[n] for n in self._names], self.card.input_format)
        predict = self._estimator.predict_proba if self._proba else self._estimator.predict
        try:
            output = np.asarray(predict(x), dtype=np.float64)
        except Exception:
            return True
        return not np.isfinite(output).all()


def _ignore_batch(columns: Mapping[str, np.ndarray], predictions: np.ndarray) -> None:
    """No drift monitoring (a warm-up call, a library user)."""


def _reason(exc: Exception) -> str:
    """The estimator's message, one line and bounded (it may quote the input)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"
