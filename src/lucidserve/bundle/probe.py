"""How large a number the estimator takes: probed once, when a bundle is made.

Trees compare in float32, so a forest refuses a finite float64 beyond about 3.4e38 ("Input X
contains infinity or a value too large for dtype('float32')"), and a linear model may overflow to
NaN probabilities long before float64's limit. The bundle records the largest of float64's and
float32's largest finite values for which the estimator answers with finite outputs when every
numeric feature of an example row takes it (positive and negative; integer columns of a DataFrame
keep their example), and the request schema bounds numeric features by it, so such values are a
422 that names the sample and the feature.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from lucidserve.bundle.card import FeatureSpec, InputFormat
from lucidserve.bundle.inputs import ModelInput

CANDIDATES = (float(np.finfo(np.float64).max), float(np.finfo(np.float32).max))


def numeric_bound(
    estimator: Any, features: Sequence[FeatureSpec], input_format: InputFormat
) -> float | None:
    """The largest candidate magnitude the estimator takes; None when it has no numeric feature
    or takes neither (then only a request-time 422 guards it)."""
    if not any(f.type == "number" for f in features):
        return None
    for bound in CANDIDATES:
        if _answers(estimator, features, input_format, bound) and _answers(
            estimator, features, input_format, -bound
        ):
            return bound
    return None


def _answers(
    estimator: Any, features: Sequence[FeatureSpec], input_format: InputFormat, value: float
) -> bool:
    columns = [
        np.array([value if f.type == "number" and not f.integer else f.example], dtype=np.float64)
        if f.type == "number"
        else np.array([f.example], dtype=object)
        for f in features
    ]
    x = ModelInput(features, input_format)(columns)
    predict = getattr(estimator, "predict_proba", None) or estimator.predict
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            output = np.asarray(predict(x))
        except Exception:
            return False
    return output.dtype.kind not in "fc" or bool(np.isfinite(output).all())
