"""The estimator's input: validated columns in card order, as the estimator was fitted on them.

Columns arrive as the predictor makes them (float64 for numbers, object otherwise, NaN for a
missing value). An array model gets one 2-D array (float64 when every feature is a number), a
text model the list of texts, and a model fitted on a DataFrame a DataFrame with its fitted
columns, in the fitted order, with the fitted dtypes: built once per batch, a column at a time,
without copying the float64 ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lucidserve.bundle.card import FeatureSpec, InputFormat

Column = Callable[[np.ndarray], Any]
# pandas-stubs type pd.array by literal dtype names; the dtype here is a card's string.
_pandas_array: Any = pd.array


class ModelInput:
    """The estimator's input for columns in card order, in the card's input format."""

    def __init__(self, features: Sequence[FeatureSpec], input_format: InputFormat) -> None:
        self._format = input_format
        self._names = [f.name for f in features]
        self._columns = [_frame_column(f) for f in features]

    def __call__(self, columns: Sequence[np.ndarray]) -> Any:
        if self._format == "frame":
            data = {
                name: convert(values)
                for name, convert, values in zip(self._names, self._columns, columns, strict=True)
            }
            return pd.DataFrame(data, copy=False)
        if self._format == "text":
            return list(columns[0])
        if all(c.dtype == np.float64 for c in columns):
            return np.column_stack(columns)
        return np.column_stack([c.astype(object) for c in columns])


def _frame_column(feature: FeatureSpec) -> Column:
    """How one validated column becomes the fitted column of a DataFrame."""
    dtype = feature.dtype or "object"
    if dtype == "float64":
        return _unchanged
    if dtype == "object":  # as it is: pandas would infer its string dtype from an object array
        return lambda values: pd.Series(values, dtype=object, copy=False)
    if feature.nullable and (feature.integer or dtype == "bool"):
        # pandas reads an integer or boolean column with blanks as float64 or object; a column
        # declared nullable by the packager is handed over the same way.
        return lambda values: pd.Series(values, copy=False)
    if dtype == "category":
        categorical = pd.CategoricalDtype(categories=feature.categories)
        return lambda values: pd.Categorical(values, dtype=categorical)
    if feature.integer or dtype == "bool":
        return lambda values: values.astype(dtype)
    return lambda values: _pandas_array(values, dtype=dtype)


def _unchanged(values: np.ndarray) -> np.ndarray:
    return values
