"""The drift reference: numeric bins robust to data recorded at a fixed resolution; the typed
reference reads and writes card.json as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from lucidserve.bundle.card import CARD_FILE, DriftReference, ModelCard
from lucidserve.bundle.reference import MISSING_CATEGORY, categorical_bins, numeric_bins
from lucidserve.bundle.store import read_card, write_card
from lucidserve.bundle.train import train


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


def test_a_trained_card_reads_and_writes_back_byte_for_byte(tmp_path: Path) -> None:
    """The typed reference is the same card.json on disk: existing bundles load unchanged."""
    train("iris", tmp_path / "iris")
    written = (tmp_path / "iris" / CARD_FILE).read_bytes()
    card = read_card(tmp_path / "iris")
    assert isinstance(card.drift, DriftReference)
    (tmp_path / "again").mkdir()
    write_card(tmp_path / "again", card)
    assert (tmp_path / "again" / CARD_FILE).read_bytes() == written


def test_a_card_without_a_reference_loads_with_drift_off_and_keeps_its_empty_section() -> None:
    fields = json.loads(
        ModelCard(
            name="m", version="1", created="now", sklearn_version="1.6", task="regression",
            features=[], estimator_file="model.skops", estimator_format="skops",
            estimator_sha256="0" * 64,
        ).model_dump_json()
    )  # fmt: skip
    assert fields["drift"] == {}
    assert ModelCard.model_validate({**fields, "drift": {}}).drift is None


def test_a_reference_with_mismatched_bins_is_refused_when_the_card_is_read() -> None:
    bins = {"kind": "categorical", "categories": ["a"], "bins": ["a", "__other__", "__missing__"],
            "proportions": [1.0, 0.0]}  # fmt: skip
    with pytest.raises(ValidationError, match="bins and proportions differ"):
        DriftReference.model_validate({"version": "v", "features": {"x": bins}, "prediction": bins})
