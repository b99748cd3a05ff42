"""The benchmark's DataFrame pipeline and its array twin, packaged by `lucidserve package`.

`churn`: a `ColumnTransformer` that selects a churn-like frame's columns by name (imputers, scaling,
one-hot encoding of string categories, a boolean passed through) into a logistic regression,
fitted on a pandas DataFrame: the service builds a DataFrame for every batch (the frame path).
Its twin is the same pipeline selecting the same columns by index, fitted on the same rows as an
array: the service's array path. The two answer the same probabilities, so whatever separates
their throughput is the frame's cost. The data and the pipeline are the tests'
(tests/support/frame_models.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.frame_models import package, save_churn_model

NAME = "churn"
# skops does not trust the pipeline's fitted dtypes by default (as the tests package it).
TRUST = ("--trust", "numpy.dtype")
ROWS = 2000


class BuildError(Exception):
    """`lucidserve package` refused the benchmark's own model."""


def build(work: Path) -> tuple[Path, Path]:
    """The frame-fitted bundle and its array-fitted twin, packaged into `work`."""
    bundles = []
    for fitted_on in ("frame", "array"):
        saved = save_churn_model(work / "saved", rows=ROWS, fitted_on=fitted_on)
        out = work / (NAME if fitted_on == "frame" else f"{NAME}-array")
        done = package(saved, out, *TRUST, "--name", out.name)
        if done.returncode != 0:
            raise BuildError(f"packaging {out.name} failed:\n{done.stderr}")
        bundles.append(out)
    return bundles[0], bundles[1]
