"""The drift reference compiled for counting: each feature's bins as vectorised binning functions.

Live values are binned with exactly the reference's edges and categories (bundle/reference.py):
all numeric features of a batch at once (`NumericBlock`: one comparison against every feature's
edges, what `searchsorted` computes feature by feature), one C-level hash lookup per categorical
value, never a Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from lucidserve.bundle.card import CategoryBins, DriftReference, FeatureSpec, ReferenceBins
from lucidserve.bundle.reference import (
    MISSING_CATEGORY_KEYS,
    PREDICTION,
    bin_numeric,
    is_missing,
)

Binner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FeatureBins:
    """One tracked feature (or the prediction): its bin labels, reference proportions, binner."""

    feature: str
    kind: str
    labels: tuple[str, ...]
    proportions: np.ndarray
    offset: int
    bin_index: Binner
    edges: np.ndarray | None = None  # numeric kinds: the searchsorted boundaries

    @property
    def cells(self) -> slice:
        """This feature's cells in the concatenation of every feature's bins."""
        return slice(self.offset, self.offset + len(self.labels))


def compile_reference(
    reference: DriftReference, features: Sequence[FeatureSpec]
) -> list[FeatureBins]:
    """Every feature of `features` (card order) and then the prediction, with consecutive cells."""
    missing = [f.name for f in features if f.name not in reference.features]
    if missing:
        raise ValueError(f"the drift reference has no bins for features {missing}")
    specs = [(f.name, reference.features[f.name]) for f in features]
    specs.append((PREDICTION, reference.prediction))
    compiled: list[FeatureBins] = []
    offset = 0
    for name, spec in specs:
        labels = tuple(spec.bins)
        proportions = np.asarray(spec.proportions, dtype=np.float64)
        edges = None if isinstance(spec, CategoryBins) else np.asarray(spec.edges, np.float64)
        compiled.append(
            FeatureBins(name, spec.kind, labels, proportions, offset, _binner(spec), edges)
        )
        offset += len(labels)
    return compiled


class NumericBlock:
    """Every numeric feature binned together: for a batch of n rows and F features, one n x F x K
    comparison with the edges (padded with +inf) instead of F `searchsorted` calls, whose per-call
    overhead dominates for the small batches a lightly loaded service sees."""

    def __init__(self, bins: Sequence[FeatureBins]) -> None:
        self.features = [b.feature for b in bins]
        edges = [b.edges for b in bins if b.edges is not None]
        if len(edges) != len(bins):
            raise ValueError("every feature of a numeric block needs its edges")
        width = max((len(e) for e in edges), default=0)
        self._boundaries = np.full((len(edges), width), np.inf)
        for row, e in enumerate(edges):
            self._boundaries[row, : len(e)] = e
        self._lengths = np.array([len(e) for e in edges], dtype=np.intp)
        self._offsets = np.array([b.offset for b in bins], dtype=np.intp)

    def cells(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The cell index of every (row, feature) value, flattened."""
        values = np.column_stack([np.asarray(columns[f], dtype=np.float64) for f in self.features])
        index = (values[:, :, None] >= self._boundaries[None, :, :]).sum(axis=2)
        index = np.minimum(index, self._lengths)  # +inf would also pass the +inf padding
        index = np.where(np.isnan(values), self._lengths + 1, index)  # the missing bin
        return (index + self._offsets).ravel()


def _binner(spec: ReferenceBins) -> Binner:
    if isinstance(spec, CategoryBins):
        return _categorical_binner(spec.categories)
    edges = np.asarray(spec.edges, dtype=np.float64)
    return _numeric_binner(edges) if spec.kind == "numeric" else _text_length_binner(edges)


def _numeric_binner(edges: np.ndarray) -> Binner:
    def bin_index(values: np.ndarray) -> np.ndarray:
        return bin_numeric(np.asarray(values, dtype=np.float64), edges)

    return bin_index


def _text_length_binner(edges: np.ndarray) -> Binner:
    numeric = _numeric_binner(edges)

    def bin_index(values: np.ndarray) -> np.ndarray:
        missing = _missing_text(values)
        lengths = np.full(len(values), np.nan)
        present = values[~missing]
        lengths[~missing] = np.fromiter(map(len, present), dtype=np.float64, count=len(present))
        return numeric(lengths)

    return bin_index


def _categorical_binner(categories: list[str]) -> Binner:
    """Bins: the categories in card order, then `__other__`, then `__missing__`.

    One hash lookup per value, run by `map` in C (no Python loop body): for strings this is what
    `searchsorted` is for numbers, and several times faster than sorting a string array.
    """
    other, missing_bin = len(categories), len(categories) + 1
    lookup: dict[object, int] = {c: i for i, c in enumerate(categories)}
    # A boolean feature's reference holds its values as text ("False", "True").
    lookup.update({flag: lookup[str(flag)] for flag in (False, True) if str(flag) in lookup})
    lookup.update(dict.fromkeys(MISSING_CATEGORY_KEYS, missing_bin))

    def bin_index(values: np.ndarray) -> np.ndarray:
        if values.dtype != object and values.dtype.kind != "U":
            values = values.astype(str)  # e.g. integer class labels; the card holds them as text
        found = map(lookup.get, values, repeat(other))
        return np.fromiter(found, dtype=np.intp, count=len(values))

    return bin_index


def _missing_text(values: np.ndarray) -> np.ndarray:
    """Missing texts, as the reference counts them (an empty text has length 0)."""
    if values.dtype != object:
        return np.zeros(len(values), dtype=bool)
    return np.fromiter(map(is_missing, values), dtype=bool, count=len(values))
