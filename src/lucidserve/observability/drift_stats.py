"""Drift statistics of observed bin counts against reference proportions: PSI and chi-square.

Both compare the same bins. Empty bins are handled with one documented epsilon (the reference's,
1e-4), the same that the Prometheus recording rules use:

- PSI = sum over bins of (a - e) * ln(a / e), with a the observed and e the reference proportion,
  each clamped from below to epsilon (no renormalisation, exactly what `clamp_min` does in PromQL).
- Chi-square goodness of fit: expected counts are n times the reference proportions clamped to
  epsilon and renormalised to sum to one; degrees of freedom = bins - 1; p = chi2.sf(statistic, df)
  (computed with scipy.special.chdtrc, the function behind scipy.stats.chi2.sf).
  A bin the reference never saw (underflow, overflow, missing, an unseen category) thus expects
  n * ~epsilon observations, so a handful of such values is strong evidence of drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

Status = Literal["ok", "warn", "alert", "insufficient_data"]


@dataclass(frozen=True)
class DriftStatistics:
    """The statistics of one feature's window; PSI and p-value are None below the minimum."""

    observations: int
    psi: float | None
    pvalue: float | None
    status: Status


def psi(counts: np.ndarray, reference: np.ndarray, epsilon: float) -> float:
    """Population stability index of `counts` against `reference` proportions."""
    total = counts.sum()
    observed = np.maximum(counts / total if total else np.zeros(len(counts)), epsilon)
    expected = np.maximum(reference, epsilon)
    return float(np.sum((observed - expected) * np.log(observed / expected)))


def chi_square_pvalue(counts: np.ndarray, reference: np.ndarray, epsilon: float) -> float:
    """Chi-square goodness-of-fit p-value of `counts` against `reference` proportions."""
    total = float(counts.sum())
    proportions = np.maximum(reference, epsilon)
    expected = total * proportions / proportions.sum()
    statistic = float(np.sum((counts - expected) ** 2 / expected))
    # chdtrc is the chi-square survival function (what scipy.stats.chi2.sf calls), without the
    # two-second import of scipy.stats in every worker.
    return float(special.chdtrc(len(counts) - 1, statistic))


def evaluate(
    counts: np.ndarray,
    reference: np.ndarray,
    *,
    epsilon: float,
    min_samples: int,
    warn_psi: float,
    alert_psi: float,
) -> DriftStatistics:
    """PSI, p-value and status of one feature, or none of them below `min_samples`."""
    observations = int(counts.sum())
    if observations < min_samples:
        return DriftStatistics(observations, None, None, "insufficient_data")
    value = psi(counts, reference, epsilon)
    status: Status = "alert" if value > alert_psi else "warn" if value > warn_psi else "ok"
    return DriftStatistics(
        observations, value, chi_square_pvalue(counts, reference, epsilon), status
    )
