"""Deliberately invalid requests and the 4xx JSON errors the service must answer them with."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from loadtest.payloads import Sample

JSON = "application/json"
UNKNOWN_LABEL = "__no_such_label__"


@dataclass(frozen=True)
class InvalidRequest:
    """One malformed request: where it goes, what it carries, and the statuses that are right."""

    case: str
    path: str
    body: str
    content_type: str
    expected: frozenset[int]

    @property
    def stats_name(self) -> str:
        return f"{self.path} [invalid: {self.case}]"


def invalid_requests(sample: Sample, *, label_route: bool = True) -> tuple[InvalidRequest, ...]:
    """The invalid cases, built around one valid `sample` of the served model.

    Without a per-label route (a regressor, a classifier without probabilities), any
    /v1/predict/{label} is a 404.
    """
    first = next(iter(sample))
    missing = {name: value for name, value in sample.items() if name != first}
    wrong_type = {**sample, first: [sample[first]]}  # a list is neither a number nor a string
    label_status = {422} if label_route else {404}
    cases = [
        ("missing feature", "/v1/predict", _samples(missing), JSON, {422}),
        ("wrong type", "/v1/predict", _samples(wrong_type), JSON, {422}),
        ("empty batch", "/v1/predict", _samples(), JSON, {422}),
        ("unknown label", f"/v1/predict/{UNKNOWN_LABEL}", _samples(sample), JSON, label_status),
        ("malformed JSON", "/v1/predict", '{"samples": [', JSON, {400, 422}),
        ("wrong content type", "/v1/predict", _samples(sample), "text/plain", {415}),
        ("unknown route", "/v1/predictions", _samples(sample), JSON, {404}),
    ]
    return tuple(
        InvalidRequest(case, path, body, content_type, frozenset(expected))
        for case, path, body, content_type, expected in cases
    )


def _samples(*samples: Mapping[str, object]) -> str:
    return json.dumps({"samples": list(samples)})
