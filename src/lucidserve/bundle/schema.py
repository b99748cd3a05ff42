"""Request and response schemas generated from the model card at start-up.

Samples validate straight from the request bytes (`TypeAdapter.validate_json`) into plain dicts:
numbers are strict and finite, categories must be among the training categories (unless the model
declares it handles unknown ones), text has a maximum length, and unknown fields are rejected.
The same types feed the OpenAPI document, so /docs shows the real features with an example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from lucidserve.bundle.card import FeatureSpec, ModelCard


@dataclass(frozen=True)
class RequestSchemas:
    """The generated sample type, its validator, and the OpenAPI pieces that document it."""

    sample: Any
    predict_request: TypeAdapter[Any]
    openapi_components: dict[str, Any]
    example: dict[str, Any]

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
    sample = _typed_dict("Sample", fields)
    sample.__pydantic_config__ = ConfigDict(extra="forbid", title="Sample")
    example: dict[str, Any] = {"samples": [{f.name: f.example for f in card.features}]}
    request = _typed_dict(
        "PredictRequest",
        {
            "samples": Annotated[
                list[sample],  # type: ignore[valid-type]
                Field(
                    min_length=1,
                    description=f"1 to {max_batch_rows} samples to predict.",
                    json_schema_extra={"maxItems": max_batch_rows},
                ),
            ]
        },
    )
    request.__pydantic_config__ = ConfigDict(
        extra="forbid", title="PredictRequest", json_schema_extra={"examples": [example]}
    )
    adapter: TypeAdapter[Any] = TypeAdapter(request)
    schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
    components = schema.pop("$defs", {})
    components["PredictRequest"] = schema
    return RequestSchemas(
        sample=sample, predict_request=adapter, openapi_components=components, example=example
    )


# TypedDicts with keys known only at run time: the functional form, called through Any.
_typed_dict: Any = TypedDict


def _field_type(feature: FeatureSpec, card: ModelCard, max_text_length: int) -> Any:
    """The annotated type of one feature: its constraints plus what /docs shows of it."""
    description = feature.description
    extra: dict[str, Any] = {}
    if feature.unit:
        description = f"{description} Unit: {feature.unit}.".strip()
        extra["x-unit"] = feature.unit
    if feature.range is not None:
        extra["x-observed-range"] = [feature.range.min, feature.range.max]
        description += f" Observed in training: {feature.range.min:g} to {feature.range.max:g}."
    documented: dict[str, Any] = {
        "description": description.strip(),
        "examples": [feature.example] if feature.example is not None else None,
        "json_schema_extra": extra,
    }
    if feature.type == "number":
        return Annotated[float, Field(strict=True, allow_inf_nan=False, **documented)]
    if feature.type == "category" and feature.categories and not card.handles_unknown_categories:
        return Annotated[Literal[tuple(feature.categories)], Field(**documented)]
    limit = min(feature.max_length or max_text_length, max_text_length)
    return Annotated[str, Field(strict=True, max_length=limit, **documented)]


class Prediction(BaseModel):
    """One sample's prediction."""

    label: str = Field(description="The predicted class (or the predicted value, as text).")
    probability: float | None = Field(description="Probability of the predicted label.")
    probabilities: dict[str, float] | None = Field(
        default=None, description="Probability of every class."
    )
    value: float | None = Field(default=None, description="The predicted value (regressors).")


class PredictResponse(BaseModel):
    """The answer to POST /v1/predict: one prediction per sample, in order."""

    model_config = ConfigDict(protected_namespaces=())

    predictions: list[Prediction]
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
