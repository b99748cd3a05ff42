"""The model card: what a bundle's `card.json` holds, as typed models."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

FeatureType = Literal["number", "category", "text", "boolean"]
Task = Literal["classification", "regression"]
InputFormat = Literal["array", "text", "frame"]
"""How the estimator takes its input: a 2-D array in card order, a list of texts, or a pandas
DataFrame with the fitted columns (in card order) and dtypes."""

CARD_FILE = "card.json"
CARD_SCHEMA_VERSION = 1
DEFAULT_EPSILON = 1e-4


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
    example: bool | int | float | str | None = None
    nullable: bool = False
    """`null` is accepted and reaches the model as a missing value (NaN for a number)."""
    dtype: str | None = None
    """For a model fitted on a DataFrame: the pandas dtype of its column ("float64", "int64",
    "bool", "object", "str", "category", ...); None for array models."""

    @property
    def integer(self) -> bool:
        """An integer column of a DataFrame model: JSON integers only."""
        return self.dtype is not None and self.dtype.lower().startswith(("int", "uint"))


class NumericBins(BaseModel):
    """A number's (or a text length's) reference bins: underflow, one bin per gap between
    consecutive `edges`, overflow, missing; a value goes to bin `searchsorted(edges, value,
    side="right")`, a missing one to the last."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["numeric", "text_length"]
    edges: list[float]
    bins: list[str]
    proportions: list[float]

    @model_validator(mode="after")
    def _consistent(self) -> NumericBins:
        if len(self.edges) < 2 or len(self.bins) != len(self.edges) + 2:
            raise ValueError(f"{len(self.bins)} bins for {len(self.edges)} edges")
        return _same_length(self)


class CategoryBins(BaseModel):
    """A category's (or a classifier's predicted class's) reference bins: `categories` in
    order, then `__other__`, then `__missing__`."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["categorical", "class"]
    categories: list[str]
    bins: list[str]
    proportions: list[float]

    @model_validator(mode="after")
    def _consistent(self) -> CategoryBins:
        if len(self.bins) != len(self.categories) + 2:
            raise ValueError(f"{len(self.bins)} bins for {len(self.categories)} categories")
        return _same_length(self)


_Bins = TypeVar("_Bins", NumericBins, CategoryBins)
ReferenceBins = Annotated[NumericBins | CategoryBins, Field(discriminator="kind")]


def _same_length(bins: _Bins) -> _Bins:
    if len(bins.proportions) != len(bins.bins):
        raise ValueError("bins and proportions differ in length")
    return bins


class DriftReference(BaseModel):
    """The drift reference (bundle/reference.py builds it): each feature's bins and the share
    of the reference data in each, and the same for the prediction."""

    model_config = ConfigDict(frozen=True)

    version: str
    epsilon: float = DEFAULT_EPSILON
    features: dict[str, ReferenceBins]
    prediction: ReferenceBins


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
    """A classifier's classes, as text (the str() of integer and boolean classes too); None for
    a regressor."""
    probabilities: bool = True
    """Whether a classifier answers class probabilities (`predict_proba`)."""
    handles_unknown_categories: bool = False
    numeric_bound: float | None = None
    """The largest magnitude of a numeric feature the estimator takes (bundle/probe.py); None
    in cards written before it was recorded: any finite number passes the schema."""
    metrics: dict[str, float] = Field(default_factory=dict)
    estimator_file: str
    estimator_format: Literal["skops", "joblib", "pickle"]
    estimator_sha256: str
    trusted_types: list[str] = Field(default_factory=list)
    drift: DriftReference | None = None
    """None for a card written without a reference (`{}` on disk): drift monitoring is off."""

    @field_validator("drift", mode="before")
    @classmethod
    def _no_reference(cls, value: Any) -> Any:
        return None if value == {} else value

    @field_serializer("drift")
    def _reference_or_empty(self, drift: DriftReference | None) -> dict[str, Any]:
        # card.json has always written a missing reference as {}.
        return drift.model_dump(mode="json") if drift is not None else {}

    def public(self) -> dict[str, Any]:
        """The card as served on /v1/model.

        The drift reference is aggregate (bin edges and proportions, no rows of the reference
        data), so it is served: load generators draw realistic traffic from it.
        """
        data = self.model_dump(mode="json", exclude={"trusted_types"})
        data["drift_reference_version"] = self.drift.version if self.drift is not None else None
        return data
