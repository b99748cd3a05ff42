"""The drift reference: bins and reference proportions per feature and for the prediction.

Built once when a bundle is made, from the data the model was trained (or packaged) with, and stored
in card.json under `drift`. Online counting (observability/drift.py) bins live traffic with exactly
these edges, so the two distributions are comparable bin by bin.

Numeric features (and text lengths) are cut near the reference deciles (halfway between the two
distinct values around each decile, duplicates merged), within the observed range widened by half
the data's resolution, plus an underflow, an overflow and a missing bin. Categorical features
keep their TOP_CATEGORIES most frequent values plus `__other__` and `__missing__`. A classifier's
prediction is binned by predicted class; a regressor's like a numeric feature.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from lucidserve.bundle.card import DEFAULT_EPSILON, DriftReference, FeatureSpec

PREDICTION = "__prediction__"
UNDERFLOW, OVERFLOW, MISSING = "underflow", "overflow", "missing"
# Category bins: underscored so that no real category (say "missing") can collide with them.
OTHER, MISSING_CATEGORY = "__other__", "__missing__"
TOP_CATEGORIES = 20
EPSILON = DEFAULT_EPSILON
# The dict keys that a categorical value is missing by (drift_bins.py looks values up in a dict).
MISSING_CATEGORY_KEYS: tuple[object, ...] = (None, "", math.nan, np.nan)


def is_missing(value: object) -> bool:
    """A value counted in a feature's missing bin: None or NaN (a text may be empty)."""
    return value is None or value != value  # noqa: PLR0124 - NaN


def is_missing_category(value: object) -> bool:
    """A category counted as missing: None, NaN, or the empty string."""
    return is_missing(value) or value == ""


def build_reference(
    features: Sequence[FeatureSpec],
    columns: Mapping[str, np.ndarray],
    predictions: np.ndarray,
    classes: Sequence[str] | None,
) -> DriftReference:
    """The `drift` section of a card for reference `columns` and the model's `predictions`."""
    specs: dict[str, Any] = {}
    for feature in features:
        values = columns[feature.name]
        if feature.type == "number":
            specs[feature.name] = numeric_bins(values.astype(np.float64), kind="numeric")
        elif feature.type == "text":
            lengths = np.array([np.nan if is_missing(v) else len(v) for v in values])
            specs[feature.name] = numeric_bins(lengths, kind="text_length")
        else:
            specs[feature.name] = categorical_bins(values)
    if classes is not None:
        prediction = categorical_bins(predictions.astype(str), categories=list(classes))
        prediction["kind"] = "class"
    else:
        prediction = numeric_bins(predictions.astype(np.float64), kind="numeric")
    body = {"epsilon": EPSILON, "features": specs, "prediction": prediction}
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return DriftReference.model_validate({"version": digest[:16], **body})


def numeric_bins(values: np.ndarray, *, kind: str) -> dict[str, Any]:
    """Decile bins over the observed range, with underflow, overflow and missing bins."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        raise ValueError("a numeric feature has no values in the reference data")
    distinct = np.unique(present)
    # Cut halfway between neighbouring distinct values, never on a value itself: data recorded
    # to a resolution (iris: 0.1 cm) would otherwise move across an edge with the slightest noise.
    half_step = float(np.diff(distinct).min()) / 2 if distinct.size > 1 else 0.5
    deciles = np.quantile(present, np.linspace(0.1, 0.9, 9))
    above = np.searchsorted(distinct, deciles, side="left")
    above = above[(above > 0) & (above < distinct.size)]
    inner = [float(e) for e in np.unique((distinct[above - 1] + distinct[above]) / 2)]
    # Boundaries for searchsorted(side="right"): index 0 is underflow, len(boundaries) overflow.
    # The range is the observed one widened by half the resolution (the smallest step).
    boundaries = [float(distinct[0]) - half_step, *inner, float(distinct[-1]) + half_step]
    labels = [UNDERFLOW]
    labels += [_interval(boundaries[i], boundaries[i + 1], i) for i in range(len(boundaries) - 1)]
    labels += [OVERFLOW, MISSING]
    counts = np.bincount(bin_numeric(values, np.asarray(boundaries)), minlength=len(labels))
    return {
        "kind": kind,
        "edges": boundaries,
        "bins": labels,
        "proportions": _proportions(counts),
    }


def bin_numeric(values: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Bin index of each value: one searchsorted call; NaN goes to the last (missing) bin."""
    index = np.searchsorted(boundaries, values, side="right")
    index[np.isnan(values)] = len(boundaries) + 1
    return index


def categorical_bins(values: np.ndarray, categories: list[str] | None = None) -> dict[str, Any]:
    """Bins for the most frequent categories, plus other and missing."""
    present = [str(v) for v in values if not is_missing_category(v)]
    if categories is None:
        categories = [c for c, _ in Counter(present).most_common(TOP_CATEGORIES)]
    labels = [*categories, OTHER, MISSING_CATEGORY]
    position = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(labels), dtype=np.int64)
    for value in values:
        if is_missing_category(value):
            counts[-1] += 1
        else:
            counts[position.get(str(value), len(categories))] += 1
    return {
        "kind": "categorical",
        "categories": categories,
        "bins": labels,
        "proportions": _proportions(counts),
    }


def _proportions(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [float(c) / float(total) for c in counts]


def _interval(low: float, high: float, index: int) -> str:
    return f"{index + 1:02d}:[{low:.4g},{high:.4g})"
