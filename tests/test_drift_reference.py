"""The drift reference's numeric bins: robust to data recorded at a fixed resolution."""

from __future__ import annotations

import numpy as np

from lucidserve.bundle.reference import MISSING_CATEGORY, categorical_bins, numeric_bins


def test_edges_fall_between_observed_values_never_on_one() -> None:
    values = np.round(np.random.default_rng(0).normal(3.0, 0.4, 300), 1)  # recorded to 0.1
    edges = np.asarray(numeric_bins(values, kind="numeric")["edges"])
    distinct = np.unique(values)
    assert np.min(np.abs(edges[:, None] - distinct[None, :])) >= 0.05 - 1e-9


def test_no_bin_inside_the_range_is_empty() -> None:
    values = np.round(np.random.default_rng(1).normal(3.0, 0.4, 300), 1)
    proportions = numeric_bins(values, kind="numeric")["proportions"]
    assert all(p > 0 for p in proportions[1:-2])  # all but underflow, overflow, missing


def test_the_range_is_widened_by_half_the_resolution() -> None:
    spec = numeric_bins(np.array([1.0, 1.5, 2.0, 2.5, 3.0]), kind="numeric")
    assert (spec["edges"][0], spec["edges"][-1]) == (0.75, 3.25)
    assert spec["proportions"][0] == spec["proportions"][-2] == 0.0


def test_a_category_named_missing_is_not_the_missing_bin() -> None:
    spec = categorical_bins(np.array(["missing", "red", None, "missing"], dtype=object))
    assert spec["bins"] == ["missing", "red", "__other__", MISSING_CATEGORY]
    assert spec["proportions"] == [0.5, 0.25, 0.0, 0.25]
