"""Feature descriptions shared by training and packaging: names, types, observed ranges."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from lucidserve.bundle.card import FeatureSpec, ValueRange

MAX_CATEGORIES = 50


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
                    example=present[0][:200] if present else "",
                )
            )
        arrays[name] = np.array(list(raw), dtype=object)
    return specs, arrays


def _as_floats(raw: Sequence[str]) -> np.ndarray | None:
    try:
        return np.array([float(v) if v != "" else np.nan for v in raw], dtype=np.float64)
    except ValueError:
        return None
