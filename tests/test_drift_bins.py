"""Binning all numeric features at once gives exactly what searchsorted gives feature by feature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lucidserve.bundle.reference import bin_numeric
from lucidserve.bundle.store import read_card
from lucidserve.bundle.train import train
from lucidserve.observability.drift_bins import NumericBlock, compile_reference


@pytest.mark.parametrize("dataset", ["iris", "breast_cancer"])
def test_numeric_block_matches_searchsorted_on_edges_nan_and_extremes(
    dataset: str, tmp_path: Path
) -> None:
    train(dataset, tmp_path / dataset)  # type: ignore[arg-type]
    card = read_card(tmp_path / dataset)
    bins = [b for b in compile_reference(card.drift, card.features)[:-1] if b.kind == "numeric"]
    block = NumericBlock(bins)
    rng = np.random.default_rng(3)
    columns = {}
    for b in bins:
        assert b.edges is not None
        edges = b.edges
        probes = np.concatenate(
            [edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf),
             [np.nan, -1e300, 1e300], rng.uniform(edges[0] - 1, edges[-1] + 1, 100)]
        )  # fmt: skip
        columns[b.feature] = np.resize(probes, 160)  # every feature the same number of rows
    cells = block.cells(columns).reshape(-1, len(bins))
    for column, b in enumerate(bins):
        assert b.edges is not None
        expected = b.offset + bin_numeric(columns[b.feature], b.edges)
        np.testing.assert_array_equal(cells[:, column], expected)
