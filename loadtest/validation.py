"""Checks on every response the scenarios receive; each returns a problem to report, or None.

They read only status codes and parsed JSON bodies, so they hold for any packaged classifier or
regressor (the card's `task`) and are tested without a running Locust.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from typing import Any

from loadtest.payloads import PayloadModel

# Probabilities come from floating-point arithmetic (and JSON round trips): allow for rounding.
SUM_TOLERANCE = 1e-6


def parse_json(text: str | None) -> tuple[Any, str | None]:
    """The decoded body, or a problem when it is not JSON."""
    if not text:
        return None, "empty body"
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"body is not JSON: {exc}"


def check_predictions(status: int, body: Any, model: PayloadModel, rows: int) -> str | None:
    """A 200 answer to POST /v1/predict with `rows` samples."""
    problem = _check_envelope(status, body, model)
    if problem:
        return problem
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != rows:
        return f"expected {rows} predictions, got {_describe(predictions)}"
    for index, prediction in enumerate(predictions):
        if model.is_regressor:
            problem = _check_value(prediction)
        else:
            problem = _check_prediction(prediction, model.classes, model.probabilities)
        if problem:
            return f"prediction {index}: {problem}"
    return None


def check_label_probabilities(
    status: int, body: Any, model: PayloadModel, label: str, rows: int
) -> str | None:
    """A 200 answer to POST /v1/predict/{label} with `rows` samples."""
    problem = _check_envelope(status, body, model)
    if problem:
        return problem
    if body.get("label") != label:
        return f"asked for label {label!r}, answer is about {body.get('label')!r}"
    probabilities = body.get("probabilities")
    if not isinstance(probabilities, list) or len(probabilities) != rows:
        return f"expected {rows} probabilities, got {_describe(probabilities)}"
    return _check_unit_interval(probabilities)


def check_error(status: int, body: Any, expected: Collection[int]) -> str | None:
    """An answer to a deliberately invalid request: one of the `expected` 4xx, as a JSON error."""
    if status not in expected:
        return f"expected status {sorted(expected)}, got {status}"
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return "error body lacks an 'error' object"
    error = body["error"]
    for key in ("type", "message"):
        if not isinstance(error.get(key), str) or not error[key]:
            return f"error body lacks error.{key}"
    if not isinstance(body.get("request_id"), str) or not body["request_id"]:
        return "error body lacks request_id"
    return None


def _check_envelope(status: int, body: Any, model: PayloadModel) -> str | None:
    if status != 200:
        return f"status {status}"
    if not isinstance(body, dict):
        return f"body is {_describe(body)}, not an object"
    if body.get("model_name") != model.name or body.get("model_version") != model.version:
        served = f"{body.get('model_name')}:{body.get('model_version')}"
        return f"answered by model {served}, expected {model.name}:{model.version}"
    if not isinstance(body.get("request_id"), str) or not body["request_id"]:
        return "no request_id"
    return None


def _check_prediction(prediction: Any, classes: Sequence[str], probabilities: bool) -> str | None:
    if not isinstance(prediction, dict):
        return f"{_describe(prediction)}, not an object"
    label = prediction.get("label")
    if label not in classes:
        return f"label {label!r} is not one of the model's classes"
    if not probabilities:  # no predict_proba: the label alone, probabilities null
        if prediction.get("probability") is not None or prediction.get("probabilities"):
            return "probabilities from a model the card says has none"
        return None
    shares = prediction.get("probabilities")
    if not isinstance(shares, dict) or set(shares) != set(classes):
        return f"probabilities {_describe(shares)} do not cover exactly {list(classes)}"
    problem = _check_distribution(list(shares.values()))
    if problem:
        return problem
    probability = prediction.get("probability")
    if not _is_number(probability) or abs(probability - shares[label]) > SUM_TOLERANCE:
        return f"probability {probability!r} differs from probabilities[{label!r}]"
    return None


def _check_value(prediction: Any) -> str | None:
    """A regressor's prediction: {"value": <finite number>}, and no label (no class to name)."""
    if not isinstance(prediction, dict):
        return f"{_describe(prediction)}, not an object"
    if "label" in prediction:
        return f"a regressor's prediction carries a label ({prediction['label']!r})"
    value = prediction.get("value")
    if not _is_number(value):
        return f"value {value!r} is not a finite number"
    return None


def _check_distribution(values: Sequence[Any]) -> str | None:
    problem = _check_unit_interval(values)
    if problem:
        return problem
    total = math.fsum(values)
    if abs(total - 1.0) > SUM_TOLERANCE:
        return f"probabilities sum to {total!r}, not 1"
    return None


def _check_unit_interval(values: Sequence[Any]) -> str | None:
    for value in values:
        if not _is_number(value) or not 0.0 <= value <= 1.0:
            return f"probability {value!r} is outside [0, 1]"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__
