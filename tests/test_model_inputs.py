"""What a model receives: features inferred from a DataFrame, the frame built per batch, nulls,
and the request schema for integers, booleans and nullable features."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from lucidserve.api.tensors import decode_inputs
from lucidserve.bundle.card import ModelCard
from lucidserve.bundle.features import infer_features
from lucidserve.bundle.inputs import ModelInput
from lucidserve.bundle.schema import build_schemas
from lucidserve.inference.predictor import Predictor
from lucidserve.observability.drift_bins import compile_reference
from tests.support.frame_models import churn_frame_card


def reference_frame(rows: int = 400) -> pd.DataFrame:
    """Numbers with blanks, whole numbers, strings with blanks, booleans, a category dtype."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "monthly": rng.normal(70, 20, rows),
            "tenure": rng.integers(0, 72, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows).astype(object),
            "paperless": rng.choice([True, False], rows),
            "region": pd.Categorical(rng.choice(["north", "south"], rows)),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "monthly"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "plan"] = np.nan
    return frame


def test_a_frame_model_keeps_dtypes_and_blanks_make_a_feature_nullable() -> None:
    specs, arrays = infer_features(reference_frame(), max_text_length=100, keep_dtypes=True)
    described = {s.name: (s.type, s.dtype, s.nullable) for s in specs}
    assert described == {
        "monthly": ("number", "float64", True),
        "tenure": ("number", "int64", False),
        "plan": ("category", "str", True),  # pandas' string dtype
        "paperless": ("boolean", "bool", False),
        "region": ("category", "category", False),
    }
    tenure = next(s for s in specs if s.name == "tenure")
    assert tenure.integer
    assert isinstance(tenure.example, int)
    assert arrays["monthly"].dtype == np.float64
    assert np.isnan(arrays["monthly"]).any()
    assert any(v != v for v in arrays["plan"])  # NaN for a blank, as the service makes it


def test_an_array_model_sees_booleans_as_categories_and_nullable_can_be_declared() -> None:
    specs, _ = infer_features(
        reference_frame(), max_text_length=100, keep_dtypes=False, nullable=["tenure"]
    )
    paperless = next(s for s in specs if s.name == "paperless")
    assert (paperless.type, paperless.categories, paperless.dtype) == (
        "category",
        ["False", "True"],
        None,
    )
    assert next(s for s in specs if s.name == "tenure").nullable
    with pytest.raises(ValueError, match="unknown columns"):
        infer_features(reference_frame(), max_text_length=100, keep_dtypes=False, nullable=["x"])


def churn_card() -> ModelCard:
    return churn_frame_card(reference_frame(), numeric_bound=float(np.finfo(np.float32).max))


SAMPLES: list[dict[str, Any]] = [
    {"region": "south", "paperless": True, "plan": None, "tenure": 3, "monthly": None},
    {"monthly": 80.5, "tenure": 40, "plan": "pro", "paperless": False, "region": "north"},
]


class Recorder:
    """An estimator that keeps what it was given."""

    classes_ = np.array([False, True])

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def predict_proba(self, x: Any) -> np.ndarray:
        self.seen.append(x)
        return np.tile([0.25, 0.75], (len(x), 1))


def test_the_frame_has_the_fitted_columns_in_order_with_their_dtypes_and_nan_for_null() -> None:
    card = churn_card()
    estimator = Recorder()
    Predictor(card, estimator).predict(SAMPLES)
    (frame,) = estimator.seen
    assert list(frame.columns) == ["monthly", "tenure", "plan", "paperless", "region"]
    assert [str(t) for t in frame.dtypes] == ["float64", "int64", "str", "bool", "category"]
    assert np.isnan(frame["monthly"][0])
    assert frame["monthly"][1] == 80.5
    assert pd.isna(frame["plan"][0])
    assert frame["plan"][1] == "pro"
    assert list(frame["region"].cat.categories) == ["north", "south"]
    assert frame["tenure"].tolist() == [3, 40]


def test_nulls_are_counted_in_the_missing_bins_and_booleans_in_their_own() -> None:
    card = churn_card()
    assert card.drift is not None
    bins = {b.feature: b for b in compile_reference(card.drift, card.features)}
    columns = Predictor(card, Recorder()).columns(SAMPLES)
    monthly, plan = bins["monthly"], bins["plan"]
    assert monthly.labels[monthly.bin_index(columns["monthly"])[0]] == "missing"
    assert plan.labels[plan.bin_index(columns["plan"])[0]] == "__missing__"
    paperless = bins["paperless"]
    assert [paperless.labels[i] for i in paperless.bin_index(columns["paperless"])] == [
        "True",
        "False",
    ]


def test_the_schema_takes_null_only_where_nullable_and_integers_and_booleans_strictly() -> None:
    schemas = build_schemas(churn_card(), max_batch_rows=10, max_text_length=100)
    validate = schemas.predict_request.validate_python
    assert validate({"samples": SAMPLES})["samples"] == SAMPLES
    for field, value in [
        ("tenure", None),
        ("tenure", 3.5),
        ("paperless", "true"),
        ("region", None),
    ]:
        with pytest.raises(ValidationError):
            validate({"samples": [{**SAMPLES[1], field: value}]})
    properties = schemas.openapi_components["Sample"]["properties"]
    assert {"type": "null"} in properties["monthly"]["anyOf"]
    assert properties["tenure"]["type"] == "integer"
    assert properties["paperless"]["type"] == "boolean"


def test_an_array_model_gets_a_float_matrix_or_an_object_one() -> None:
    card = churn_card()
    numbers = [f for f in card.features if f.type == "number" and not f.integer]
    x = ModelInput(numbers, "array")([np.array([1.0, 2.0])])
    assert isinstance(x, np.ndarray)
    assert x.dtype == np.float64
    assert x.shape == (2, 1)
    mixed = ModelInput(card.features[:3], "array")(
        [np.array([1.0]), np.array([2.0]), np.array(["pro"], dtype=object)]
    )
    assert mixed.dtype == object
    assert mixed.shape == (1, 3)


def test_boolean_and_integer_tensors_keep_their_type() -> None:
    document = {
        "inputs": [
            {"name": "paperless", "datatype": "BOOL", "shape": [2], "data": [True, False]},
            {"name": "tenure", "datatype": "INT64", "shape": [2], "data": [3, 40]},
        ]
    }
    paperless, tenure = decode_inputs(document, b"")
    assert paperless.values == [True, False]
    assert isinstance(tenure.values, np.ndarray)
    assert tenure.values.tolist() == [3, 40]
    binary = {"name": "paperless", "datatype": "BOOL", "shape": [2]}
    binary["parameters"] = {"binary_data_size": 2}
    (decoded,) = decode_inputs({"inputs": [binary]}, b"\x01\x00")
    assert decoded.values == [True, False]
    for bad in ({"datatype": "INT64", "data": [3.5]}, {"datatype": "BOOL", "data": [1]}):
        with pytest.raises(Exception, match="must be"):
            decode_inputs({"inputs": [{"name": "x", "shape": [1], **bad}]}, b"")
