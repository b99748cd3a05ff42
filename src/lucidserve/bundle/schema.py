"""Request and response schemas generated from the model card at start-up.

Samples validate straight from the request bytes (`TypeAdapter.validate_json`) into plain dicts:
numbers are strict, finite and within what the estimator can take (the card's `numeric_bound`),
integers (an integer column of a DataFrame model) are JSON integers, booleans JSON booleans,
categories must be among the training categories (unless the model declares it handles unknown
ones), text has a maximum length, and `null` is accepted for a nullable feature only. The row
limit is the list's `max_length`, which pydantic checks before it validates any sample. Which
fields a sample has is checked by the caller, once per sample (api/intake.py): here every field
is optional and unknown ones pass (`extra="allow"`),
because pydantic would build one error per unknown field, and each "missing" error copies the
whole sample (a 1 MB sample with 90,000 unknown keys and no feature cost 100 ms to refuse).
The OpenAPI document states the real contract: every feature required, no other field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from lucidserve.bundle.card import FeatureSpec, ModelCard

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class RequestSchemas:
    """The generated sample type, its validator, and the OpenAPI pieces that document it."""

    sample: Any
    predict_request: TypeAdapter[Any]
    first_invalid_sample: TypeAdapter[Any]
    """The same validation, stopping at the first invalid sample: its errors, cheaply."""
    openapi_components: dict[str, Any]
    example: dict[str, Any]
    feature_names: tuple[str, ...]

    def request_body(self) -> dict[str, Any]:
        """An OpenAPI requestBody object for a route that reads its body itself."""
        return {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/PredictRequest"},
                    "example": self.example,
                }
            },
        }


def build_schemas(card: ModelCard, *, max_batch_rows: int, max_text_length: int) -> RequestSchemas:
    """Generate the request types for `card`."""
    fields = {f.name: _field_type(f, card, max_text_length) for f in card.features}
    sample = _typed_dict("Sample", fields, total=False)
    # Missing and unknown fields are refused by the caller (see the module docstring).
    sample.__pydantic_config__ = ConfigDict(
        extra="allow",
        title="Sample",
        json_schema_extra={"required": list(fields), "additionalProperties": False},
    )
    example: dict[str, Any] = {"samples": [{f.name: f.example for f in card.features}]}
    adapter = _request_adapter(sample, example, max_batch_rows, fail_fast=False)
    schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
    components = schema.pop("$defs", {})
    components["PredictRequest"] = schema
    return RequestSchemas(
        sample=sample,
        predict_request=adapter,
        first_invalid_sample=_request_adapter(sample, example, max_batch_rows, fail_fast=True),
        openapi_components=components,
        example=example,
        feature_names=tuple(fields),
    )


def _request_adapter(
    sample: Any, example: dict[str, Any], max_batch_rows: int, *, fail_fast: bool
) -> TypeAdapter[Any]:
    request = _typed_dict(
        "PredictRequest",
        {
            "samples": Annotated[
                list[sample],
                Field(
                    min_length=1,
                    max_length=max_batch_rows,
                    fail_fast=fail_fast,
                    description=f"1 to {max_batch_rows} samples to predict.",
                ),
            ]
        },
    )
    request.__pydantic_config__ = ConfigDict(
        extra="forbid", title="PredictRequest", json_schema_extra={"examples": [example]}
    )
    return TypeAdapter(request)


# TypedDicts with keys known only at run time: the functional form, called through Any.
_typed_dict: Any = TypedDict


def _field_type(feature: FeatureSpec, card: ModelCard, max_text_length: int) -> Any:
    """The annotated type of one feature: its constraints plus what /docs shows of it; `null`
    too when the feature is nullable."""
    description = feature.description
    extra: dict[str, Any] = {}
    if feature.unit:
        description = f"{description} Unit: {feature.unit}.".strip()
        extra["x-unit"] = feature.unit
    if feature.range is not None:
        extra["x-observed-range"] = [feature.range.min, feature.range.max]
        description += f" Observed in training: {feature.range.min:g} to {feature.range.max:g}."
    if feature.nullable:
        description += " May be null (a missing value)."
    documented: dict[str, Any] = {
        "description": description.strip(),
        "examples": [feature.example] if feature.example is not None else None,
        "json_schema_extra": extra,
    }
    value = _value_type(feature, card, max_text_length)
    return Annotated[value | None if feature.nullable else value, Field(**documented)]


def _value_type(feature: FeatureSpec, card: ModelCard, max_text_length: int) -> Any:
    """A feature's present value: a bounded number, an integer, a boolean, one of the
    categories, or text of bounded length."""
    if feature.type == "number" and feature.integer:
        return Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX)]
    if feature.type == "number":
        bound = card.numeric_bound
        low, high = (None, None) if bound is None else (-bound, bound)
        return Annotated[float, Field(strict=True, allow_inf_nan=False, ge=low, le=high)]
    if feature.type == "boolean":
        return Annotated[bool, Field(strict=True)]
    if feature.type == "category" and feature.categories and not card.handles_unknown_categories:
        return Literal[tuple(feature.categories)]
    limit = min(feature.max_length or max_text_length, max_text_length)
    return Annotated[str, Field(strict=True, max_length=limit)]


class ClassPrediction(BaseModel):
    """A classifier's prediction for one sample."""

    label: str = Field(description="The predicted class.")
    probability: float | None = Field(
        description="Probability of the predicted class (null: the model has no probabilities)."
    )
    probabilities: dict[str, float] | None = Field(description="Probability of every class.")


class ValuePrediction(BaseModel):
    """A regressor's prediction for one sample."""

    value: float = Field(description="The predicted value.")


class ClassificationResponse(BaseModel):
    """The answer to POST /v1/predict for a classifier: one prediction per sample, in order."""

    model_config = ConfigDict(protected_namespaces=(), title="PredictResponse")

    predictions: list[ClassPrediction]
    model_name: str
    model_version: str
    request_id: str


class RegressionResponse(BaseModel):
    """The answer to POST /v1/predict for a regressor: one value per sample, in order."""

    model_config = ConfigDict(protected_namespaces=(), title="PredictResponse")

    predictions: list[ValuePrediction]
    model_name: str
    model_version: str
    request_id: str


class LabelProbabilityResponse(BaseModel):
    """The answer to POST /v1/predict/{label}: that label's probability per sample, in order."""

    model_config = ConfigDict(protected_namespaces=())

    label: str
    probabilities: list[float]
    model_name: str
    model_version: str
    request_id: str
