"""The model card: what a bundle's `card.json` holds, as typed models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FeatureType = Literal["number", "category", "text"]
Task = Literal["classification", "regression"]
InputFormat = Literal["array", "text"]

CARD_FILE = "card.json"
CARD_SCHEMA_VERSION = 1


class ValueRange(BaseModel):
    """The range a numeric feature took in the reference data."""

    min: float
    max: float


class FeatureSpec(BaseModel):
    """One input feature: its name, type and what the reference data showed of it."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: FeatureType
    description: str = ""
    unit: str | None = None
    range: ValueRange | None = None
    categories: list[str] | None = None
    max_length: int | None = None
    example: float | str | None = None


class ModelCard(BaseModel):
    """Everything known about a bundled model; served (less the drift reference) on /v1/model."""

    model_config = ConfigDict(protected_namespaces=())

    schema_version: int = CARD_SCHEMA_VERSION
    name: str
    version: str
    description: str = ""
    created: str
    sklearn_version: str
    task: Task
    input_format: InputFormat = "array"
    target: str | None = None
    features: list[FeatureSpec]
    classes: list[str] | None = None
    handles_unknown_categories: bool = False
    numeric_bound: float | None = None
    """The largest magnitude of a numeric feature the estimator takes (bundle/probe.py); None
    in cards written before it was recorded: any finite number passes the schema."""
    metrics: dict[str, float] = Field(default_factory=dict)
    estimator_file: str
    estimator_format: Literal["skops", "joblib", "pickle"]
    estimator_sha256: str
    trusted_types: list[str] = Field(default_factory=list)
    drift: dict[str, Any] = Field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """The card as served on /v1/model.

        The drift reference is aggregate (bin edges and proportions, no rows of the reference
        data), so it is served: load generators draw realistic traffic from it.
        """
        data = self.model_dump(mode="json", exclude={"trusted_types"})
        data["drift_reference_version"] = self.drift.get("version")
        return data
