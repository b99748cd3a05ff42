"""GET /v1/drift: drift statistics of the sliding window, per feature, for people and scripts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from lucidserve.api.errors import ApiError
from lucidserve.observability.drift import DriftMonitor

DriftStatus = Literal["ok", "warn", "alert", "insufficient_data"]


class DriftBin(BaseModel):
    """One bin: its share of the reference data and of the window's observations."""

    bin: str = Field(description="Bin label, as in the `bin` label of the drift metrics.")
    reference: float = Field(description="Proportion of the reference data in this bin.")
    observed: float = Field(description="Proportion of the window's observations in this bin.")


class FeatureDrift(BaseModel):
    """The drift statistics of one feature (or of the prediction, `__prediction__`)."""

    kind: str = Field(description="numeric, text_length, categorical or class.")
    observations: int = Field(description="Observations in the window, pooled over all workers.")
    psi: float | None = Field(
        description="Population stability index; null below the minimum sample size."
    )
    pvalue: float | None = Field(
        description="Chi-square goodness-of-fit p-value; null below the minimum sample size."
    )
    status: DriftStatus = Field(
        description="ok; warn when PSI > warn_psi; alert when PSI > alert_psi; "
        "insufficient_data below min_samples."
    )
    bins: list[DriftBin]


class DriftSummary(BaseModel):
    """Drift of live traffic against the model's reference data, over a sliding window."""

    model_config = {"protected_namespaces": ()}

    model_name: str
    model_version: str
    reference_version: str
    status: DriftStatus = Field(description="The worst status of any feature.")
    window_seconds: float = Field(description="Length of the sliding window.")
    slot_seconds: float = Field(description="The window slides in steps of this length.")
    min_samples: int = Field(description="Below this many observations no statistic is given.")
    warn_psi: float
    alert_psi: float
    epsilon: float = Field(description="Floor for empty bins' proportions in PSI and chi-square.")
    features: dict[str, FeatureDrift]


def drift_router(monitor: DriftMonitor | None, guards: Sequence[Any]) -> APIRouter:
    """GET /v1/drift from `monitor`; a 404 error when drift monitoring is switched off (None)."""
    router = APIRouter(prefix="/v1", tags=["drift"], dependencies=guards)

    @router.get(
        "/drift",
        response_model=DriftSummary,
        summary="Drift statistics per feature over the sliding window",
    )
    def drift_summary() -> dict[str, Any]:
        # A plain `def`: reading the workers' window files runs in the thread pool, off the loop.
        if monitor is None:
            raise ApiError(
                404,
                "not_found",
                "Drift monitoring is off (LUCIDSERVE_DRIFT_ENABLED or LUCIDSERVE_METRICS_ENABLED "
                "is false, or the model card has no drift reference).",
            )
        return monitor.summary()

    return router
