"""Feature descriptions shared by training and packaging: names, types, observed ranges.

Each feature's example (the OpenAPI document's, and the sample the server warms up with) is made
from the reference data's statistics, never copied from a row: the median of a number, the most
frequent category (the schema lists every category anyway), and for free text a placeholder of
the typical length. A packager can give better examples (`lucidserve package --example`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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
    columns: Mapping[str, Sequence[str]], *, max_text_length: int
) -> tuple[list[FeatureSpec], dict[str, np.ndarray]]:
    """Infer each CSV column's type from its values: numbers, few distinct values, or free text.

    Returns the feature specs and the columns converted to arrays (floats for numbers).
    """
    specs: list[FeatureSpec] = []
    arrays: dict[str, np.ndarray] = {}
    for name, raw in columns.items():
        numbers = _as_floats(raw)
        if numbers is not None:
            specs.append(describe_numeric(name, numbers, description=f"{name} (number)"))
            arrays[name] = numbers
            continue
        present = [v for v in raw if v != ""]
        distinct = sorted(set(present))
        mean_length = sum(map(len, present)) / max(1, len(present))
        if len(distinct) <= MAX_CATEGORIES and mean_length < 40 and len(distinct) < len(raw):
            specs.append(
                FeatureSpec(
                    name=name,
                    type="category",
                    description=f"{name} (one of {len(distinct)} categories)",
                    categories=distinct,
                    example=max(distinct, key=present.count),
                )
            )
        else:
            specs.append(
                FeatureSpec(
                    name=name,
                    type="text",
                    description=f"{name} (free text)",
                    max_length=max_text_length,
                    example=text_placeholder(present),
                )
            )
        arrays[name] = np.array(list(raw), dtype=object)
    return specs, arrays


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
            value = float(value)
        elif not isinstance(value, str):
            raise ValueError(f"--example: {feature.name} is a {feature.type}, not {value!r}")
        elif feature.categories is not None and value not in feature.categories:
            raise ValueError(f"--example: {value!r} is not one of {feature.name}'s categories")
        updated.append(feature.model_copy(update={"example": value}))
    return updated


def _as_floats(raw: Sequence[str]) -> np.ndarray | None:
    try:
        return np.array([float(v) if v != "" else np.nan for v in raw], dtype=np.float64)
    except ValueError:
        return None
