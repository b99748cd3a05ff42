"""The estimator's input: validated columns in card order, as the estimator was fitted on them."""

from __future__ import annotations

from typing import Any

import numpy as np

from lucidserve.bundle.card import InputFormat


def model_input(columns: list[np.ndarray], input_format: InputFormat) -> Any:
    """The estimator's input for columns in card order: a 1-D text list or a 2-D array."""
    if input_format == "text":
        return list(columns[0])
    if all(c.dtype == np.float64 for c in columns):
        return np.column_stack(columns)
    return np.column_stack([c.astype(object) for c in columns])
