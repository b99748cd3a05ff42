"""PSI and the chi-square p-value against an independent computation with scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from lucidserve.bundle.reference import EPSILON
from lucidserve.observability.drift_stats import chi_square_pvalue, evaluate, psi

# A reference with empty bins (underflow, overflow, missing) and observed counts with empty bins.
REFERENCE = np.array([0.0, 0.1, 0.2, 0.3, 0.25, 0.15, 0.0, 0.0])
COUNTS = np.array([3, 40, 0, 130, 120, 90, 0, 17])


def scipy_psi(counts: np.ndarray, reference: np.ndarray, epsilon: float) -> float:
    """PSI as the symmetrised relative entropy of the clamped proportions."""
    observed = np.clip(counts / counts.sum(), epsilon, None)
    expected = np.clip(reference, epsilon, None)
    return float(
        np.sum(special.rel_entr(observed, expected) + special.rel_entr(expected, observed))
    )


def scipy_pvalue(counts: np.ndarray, reference: np.ndarray, epsilon: float) -> float:
    expected = np.clip(reference, epsilon, None)
    expected = counts.sum() * expected / expected.sum()
    return float(stats.chisquare(counts, f_exp=expected).pvalue)


def test_psi_matches_scipy_with_empty_bins_on_both_sides() -> None:
    assert psi(COUNTS, REFERENCE, EPSILON) == pytest.approx(
        scipy_psi(COUNTS, REFERENCE, EPSILON), rel=1e-12
    )


def test_pvalue_matches_scipy_chisquare_with_empty_bins_on_both_sides() -> None:
    assert chi_square_pvalue(COUNTS, REFERENCE, EPSILON) == pytest.approx(
        scipy_pvalue(COUNTS, REFERENCE, EPSILON), rel=1e-9, abs=1e-300
    )


def test_pvalue_matches_scipy_when_the_counts_follow_the_reference() -> None:
    counts = np.array([0, 51, 98, 152, 121, 78, 0, 0])
    value = chi_square_pvalue(counts, REFERENCE, EPSILON)
    assert value == pytest.approx(scipy_pvalue(counts, REFERENCE, EPSILON), rel=1e-9)
    assert value > 0.05


def test_identical_distributions_have_zero_psi() -> None:
    counts = np.array([0, 100, 200, 300, 250, 150, 0, 0])
    assert psi(counts, REFERENCE, EPSILON) == pytest.approx(0.0, abs=1e-12)


def test_a_bin_the_reference_never_saw_is_strong_chi_square_evidence() -> None:
    counts = np.array([10, 100, 200, 300, 250, 150, 0, 0])
    assert chi_square_pvalue(counts, REFERENCE, EPSILON) < 1e-6


@pytest.mark.parametrize(
    ("counts", "status"),
    [
        (np.array([0, 100, 200, 300, 250, 150, 0, 0]), "ok"),
        (np.array([0, 250, 200, 250, 180, 120, 0, 0]), "warn"),
        (np.array([0, 600, 200, 100, 50, 50, 0, 0]), "alert"),
    ],
)
def test_status_follows_the_psi_thresholds(counts: np.ndarray, status: str) -> None:
    result = evaluate(
        counts, REFERENCE, epsilon=EPSILON, min_samples=500, warn_psi=0.1, alert_psi=0.25
    )
    assert result.psi is not None
    expected = "alert" if result.psi > 0.25 else "warn" if result.psi > 0.1 else "ok"
    assert result.status == expected == status


def test_below_the_minimum_sample_size_there_is_no_statistic() -> None:
    result = evaluate(
        COUNTS, REFERENCE, epsilon=EPSILON, min_samples=1000, warn_psi=0.1, alert_psi=0.25
    )
    assert (result.observations, result.psi, result.pvalue) == (400, None, None)
    assert result.status == "insufficient_data"
