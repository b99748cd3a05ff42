"""The predictor: validated samples in, predictions out, one estimator call a batch.

A classifier's predictions are labels (the card's classes, as text) with their probabilities when
the estimator has `predict_proba`; a regressor's are values. Samples become one array per feature
(float64 for numbers, NaN for `null`; object otherwise, NaN for `null`), which drift counting
sees, and the estimator's input is built from those (bundle/inputs.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lucidserve.bundle.card import FeatureSpec, ModelCard
from lucidserve.bundle.inputs import ModelInput

Sample = Mapping[str, Any]
DriftObserver = Callable[[Mapping[str, np.ndarray], np.ndarray], None]
ColumnReader = Callable[[Sequence[Sample]], np.ndarray]


@dataclass(frozen=True)
class BatchResult:
    """Predictions for consecutive rows; `select` cuts out one request's rows. A classifier has
    `labels` (and `probabilities` when it has predict_proba), a regressor `values`."""

    labels: np.ndarray | None
    probabilities: np.ndarray | None
    values: np.ndarray | None
    inference_seconds: float

    @property
    def predicted(self) -> np.ndarray:
        """What the prediction's drift bins count: the values, or the labels."""
        predicted = self.values if self.values is not None else self.labels
        assert predicted is not None
        return predicted

    def select(self, start: int, stop: int) -> BatchResult:
        return BatchResult(
            labels=None if self.labels is None else self.labels[start:stop],
            probabilities=None if self.probabilities is None else self.probabilities[start:stop],
            values=None if self.values is None else self.values[start:stop],
            inference_seconds=self.inference_seconds,
        )


@dataclass(frozen=True)
class Predictions:
    """A request's predictions as plain lists, made once for its body and its records: a
    classifier's labels (and each label's probability), or a regressor's values."""

    result: BatchResult
    labels: list[str] | None
    confidences: list[float] | None
    values: list[float] | None

    @classmethod
    def of(cls, result: BatchResult) -> Predictions:
        probabilities = result.probabilities
        return cls(
            result,
            labels=None if result.labels is None else result.labels.tolist(),
            confidences=None if probabilities is None else probabilities.max(axis=1).tolist(),
            values=None if result.values is None else result.values.tolist(),
        )


class RejectedInput(Exception):  # noqa: N818 - the request's fault, not the service's
    """The estimator raised on these samples, or answered them with non-finite numbers."""

    def __init__(self, reason: str, sample: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sample = sample


class Predictor:
    """Wraps a fitted estimator with the card's features, input format and task."""

    def __init__(
        self, card: ModelCard, estimator: Any, observe_drift: DriftObserver | None = None
    ) -> None:
        """`observe_drift` sees each predicted batch's columns and predictions (the
        observability object's `record_drift`)."""
        self.card = card
        self._estimator = estimator
        self._observe_drift = observe_drift or _ignore_batch
        self._names = [f.name for f in card.features]
        self._readers = [_column_reader(f) for f in card.features]
        self._input = ModelInput(card.features, card.input_format)
        self.classes = np.asarray(card.classes, dtype=object) if card.classes else None
        self._proba = self.classes is not None and card.probabilities
        self._call = estimator.predict_proba if self._proba else estimator.predict

    def columns(self, samples: Sequence[Sample]) -> dict[str, np.ndarray]:
        """Samples as one array per feature (float64 for numbers, object otherwise; NaN for
        `null`)."""
        return {name: read(samples) for name, read in zip(self._names, self._readers, strict=True)}

    def predict(self, samples: Sequence[Sample]) -> BatchResult:
        """Predict every sample in one estimator call, then count the batch for drift.

        Raises RejectedInput when the estimator raises or answers with a non-finite number: with
        validated input, that is the request's data, not the service, at fault.
        """
        columns = self.columns(samples)
        x = self._input([columns[n] for n in self._names])
        started = time.perf_counter()
        try:
            output = np.asarray(self._call(x))
        except Exception as exc:
            raise RejectedInput(_reason(exc)) from exc
        elapsed = time.perf_counter() - started
        result = self._result(output, elapsed)
        self._observe_drift(columns, result.predicted)
        return result

    def _result(self, output: np.ndarray, elapsed: float) -> BatchResult:
        if self.classes is None:
            values = _finite(output)
            return BatchResult(None, None, values, elapsed)
        if self._proba:
            probabilities = _finite(output)
            return BatchResult(
                self.classes[probabilities.argmax(axis=1)], probabilities, None, elapsed
            )
        # A classifier without predict_proba: its labels, as text like the card's classes.
        return BatchResult(output.astype(str).astype(object), None, None, elapsed)

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
        try:
            output = np.asarray(self._call(self._input([columns[n] for n in self._names])))
            if self.classes is None or self._proba:
                _finite(output)
        except Exception:
            return True
        return False


def _column_reader(feature: FeatureSpec) -> ColumnReader:
    """How one feature's values are read out of the samples, decided once per feature."""
    name = feature.name
    if feature.type == "number":
        if feature.nullable:  # numpy makes None a NaN in a float64 array
            return lambda samples: np.array([s[name] for s in samples], dtype=np.float64)
        return lambda samples: np.fromiter((s[name] for s in samples), np.float64, len(samples))
    if feature.nullable:
        return lambda samples: np.array(
            [np.nan if (v := s[name]) is None else v for s in samples], dtype=object
        )
    return lambda samples: np.array([s[name] for s in samples], dtype=object)


def _finite(output: np.ndarray) -> np.ndarray:
    """The estimator's numbers as float64, or RejectedInput when one is not finite."""
    numbers = np.asarray(output, dtype=np.float64)
    if not np.isfinite(numbers).all():
        raise RejectedInput("the model answered with a number that is not finite")
    return numbers


def _ignore_batch(columns: Mapping[str, np.ndarray], predictions: np.ndarray) -> None:
    """No drift monitoring (a warm-up call, a library user)."""


def _reason(exc: Exception) -> str:
    """The estimator's message, one line and bounded (it may quote the input)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"
