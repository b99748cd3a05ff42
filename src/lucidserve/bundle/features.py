"""Feature descriptions shared by training and packaging: names, types, observed ranges.

Each feature's example (the OpenAPI document's, and the sample the server warms up with) is made
from the reference data's statistics, never copied from a row: the median of a number, the most
frequent category (the schema lists every category anyway), and for free text a placeholder of
the typical length. A packager can give better examples (`lucidserve package --example`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lucidserve.bundle.card import FeatureSpec, ValueRange

MAX_CATEGORIES = 50
PLACEHOLDER_WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor"
MAX_PLACEHOLDER_LENGTH = 200


def identifier(name: str) -> str:
    """A feature name usable as a JSON key in Python code: `sepal length (cm)` -> `sepal_length`."""
    name = re.sub(r"\s*\([^)]*\)", "", name).strip().lower()
    name = re.sub(r"[^0-9a-z]+", "_", name).strip("_")
    return name if name and not name[0].isdigit() else f"f_{name}"


def describe_numeric(
    name: str, values: np.ndarray, *, description: str = "", unit: str | None = None
) -> FeatureSpec:
    """A number feature with the observed range and a median example."""
    present = values[~np.isnan(values)]
    return FeatureSpec(
        name=name,
        type="number",
        description=description,
        unit=unit,
        range=ValueRange(min=float(present.min()), max=float(present.max())),
        example=round(float(np.median(present)), 4),
    )


def infer_features(
    frame: pd.DataFrame,
    *,
    max_text_length: int,
    keep_dtypes: bool,
    nullable: Collection[str] = (),
) -> tuple[list[FeatureSpec], dict[str, np.ndarray]]:
    """Each column's feature type from its pandas dtype and values: numbers, booleans, few
    distinct values (a category), or free text. A column with blanks, or named in `nullable`,
    takes `null`. `keep_dtypes` (a model fitted on a DataFrame) records each column's dtype;
    otherwise booleans are the categories "False" and "True", as an array model saw them.

    Returns the feature specs and the columns as arrays (float64 for numbers, object otherwise,
    NaN for a missing value): what the service's predictor makes of the same values.
    """
    unknown = sorted(set(nullable) - set(frame.columns))
    if unknown:
        raise ValueError(f"--nullable names unknown columns {unknown}")
    specs: list[FeatureSpec] = []
    arrays: dict[str, np.ndarray] = {}
    for name in frame.columns:
        column = frame[name]
        missing = bool(column.isna().any()) or name in nullable
        common = {"name": str(name), "nullable": missing}
        if keep_dtypes:
            common["dtype"] = str(column.dtype)
        spec, values = _describe_column(str(name), column, common, max_text_length, keep_dtypes)
        specs.append(spec)
        arrays[str(name)] = values
    return specs, arrays


def _describe_column(
    name: str,
    column: pd.Series,
    common: dict[str, Any],
    max_text_length: int,
    keep_dtypes: bool,
) -> tuple[FeatureSpec, np.ndarray]:
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) and keep_dtypes:
        values = column.to_numpy(dtype=object, na_value=np.nan)
        return FeatureSpec(
            type="boolean",
            description=f"{name} (true or false)",
            example=bool(column.mode(dropna=True).iloc[0]),
            **common,
        ), values
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
        spec = describe_numeric(name, numbers, description=f"{name} (number)")
        update: dict[str, Any] = dict(common)
        if spec.example is not None and pd.api.types.is_integer_dtype(dtype):
            update["example"] = round(float(spec.example))
        return spec.model_copy(update=update), numbers
    values = np.array([np.nan if _blank(v) else str(v) for v in column.tolist()], dtype=object)
    present = [v for v in values if isinstance(v, str)]
    if isinstance(dtype, pd.CategoricalDtype):
        distinct = [str(c) for c in dtype.categories]
    else:
        distinct = sorted(set(present))
    mean_length = sum(map(len, present)) / max(1, len(present))
    categorical = isinstance(dtype, pd.CategoricalDtype) or (
        len(distinct) <= MAX_CATEGORIES and mean_length < 40 and len(distinct) < len(values)
    )
    if categorical:
        return FeatureSpec(
            type="category",
            description=f"{name} (one of {len(distinct)} categories)",
            categories=distinct,
            example=max(distinct, key=present.count) if present else distinct[0],
            **common,
        ), values
    return FeatureSpec(
        type="text",
        description=f"{name} (free text)",
        max_length=max_text_length,
        example=text_placeholder(present),
        **common,
    ), values


def _blank(value: object) -> bool:
    return value is None or value != value or value == ""  # noqa: PLR0124 - NaN


def text_placeholder(texts: Sequence[str]) -> str:
    """Placeholder words as long as the median text (at most MAX_PLACEHOLDER_LENGTH characters)."""
    length = int(np.median([len(t) for t in texts])) if texts else 0
    length = max(1, min(length, MAX_PLACEHOLDER_LENGTH))
    words = " ".join([PLACEHOLDER_WORDS] * math.ceil(length / len(PLACEHOLDER_WORDS)))
    return words[:length].strip() or "lorem"


def given_examples(
    features: Sequence[FeatureSpec], examples: Mapping[str, Any]
) -> list[FeatureSpec]:
    """`features` with the examples a packager gave (feature name -> value), each checked."""
    by_name = {f.name: f for f in features}
    unknown = sorted(set(examples) - set(by_name))
    if unknown:
        raise ValueError(f"--example names unknown features {unknown}; features: {list(by_name)}")
    updated = []
    for feature in features:
        if feature.name not in examples:
            updated.append(feature)
            continue
        value = examples[feature.name]
        if feature.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"--example: {feature.name} is a number, not {value!r}")
            if feature.integer and value != int(value):
                raise ValueError(f"--example: {feature.name} is an integer, not {value!r}")
            value = int(value) if feature.integer else float(value)
        elif feature.type == "boolean":
            if not isinstance(value, bool):
                raise ValueError(f"--example: {feature.name} is true or false, not {value!r}")
        elif not isinstance(value, str):
            raise ValueError(f"--example: {feature.name} is a {feature.type}, not {value!r}")
        elif feature.categories is not None and value not in feature.categories:
            raise ValueError(f"--example: {value!r} is not one of {feature.name}'s categories")
        updated.append(feature.model_copy(update={"example": value}))
    return updated
