"""Models fitted on pandas DataFrames, as users ship them, for the tests and `make bench`.

- a churn-like classifier: a mixed DataFrame (numbers with blanks, an integer, string categories
  with blanks, a boolean) through a `ColumnTransformer` that selects its columns by name;
- the same pipeline fitted on a NumPy array that selects its columns by index (the array twin);
- a `HistGradientBoostingRegressor` on `load_diabetes(as_frame=True)`, with blanks in two columns.

Each is saved with skops and written with a reference CSV (blanks for missing values), ready for
`lucidserve package`. Data is generated from a fixed seed: the same rows every time.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lucidserve.bundle.card import ModelCard
from lucidserve.bundle.features import infer_features
from lucidserve.bundle.reference import build_reference
from tests.support.processes import BIN, REPO

# The fitted column order (not the order the transformer selects them in).
CHURN_COLUMNS = ("contract", "tenure", "monthly_charges", "paperless", "payment", "total_charges")
CHURN_NUMERIC = ("monthly_charges", "tenure", "total_charges")
CHURN_CATEGORIES = ("contract", "payment")
CHURN_BOOLEAN = ("paperless",)
CHURN_NULLABLE = ("contract", "monthly_charges", "payment", "total_charges")
CHURN_TARGET = "churned"
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("card", "bank-transfer", "electronic-check", "mailed-check")
MISSING_SHARE = 0.05
DIABETES_NULLABLE = ("bmi", "s5")
# No blank in the reference, nullable because the packager says so (the trees take NaN anywhere).
DIABETES_DECLARED_NULLABLE = "age"
# scikit-learn's type inside a HistGradientBoosting model, which skops does not trust by default.
HIST_TREES = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


@dataclass(frozen=True)
class SavedModel:
    """A fitted estimator saved with skops, its reference CSV, and what the tests compare with."""

    estimator: Any
    model_path: Path
    reference: Path
    frame: pd.DataFrame
    """The rows of the reference CSV (features only), with the dtypes the model was fitted on."""
    target: str | None = None


def churn_frame(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A churn-like DataFrame in CHURN_COLUMNS order and its integer target (0 or 1).

    About MISSING_SHARE of the two float columns and of the two category columns is missing;
    `tenure` (int64) and `paperless` (bool) never are.
    """
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    monthly = np.round(rng.normal(65.0, 25.0, rows).clip(15.0, 130.0), 2)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.uniform(0.9, 1.1, rows), 2)
    contract = rng.choice(np.array(CONTRACTS, dtype=object), rows, p=[0.55, 0.25, 0.2])
    payment = rng.choice(np.array(PAYMENTS, dtype=object), rows)
    paperless = rng.random(rows) < 0.6
    score = (
        1.5 * (contract == "month-to-month")
        + 0.8 * (payment == "electronic-check")
        + 0.02 * (monthly - 65.0)
        - 0.04 * tenure
        + 0.4 * paperless
        + rng.normal(0.0, 0.7, rows)
    )
    churned = (score > 0.0).astype(np.int64)
    frame = pd.DataFrame(
        {
            "contract": contract,
            "tenure": tenure.astype(np.int64),
            "monthly_charges": monthly,
            "paperless": paperless,
            "payment": payment,
            "total_charges": total,
        }
    )
    for column in CHURN_NULLABLE:
        holes = rng.random(rows) < MISSING_SHARE
        frame[column] = frame[column].astype(object).where(~holes, np.nan)
    # The dtypes pandas would read back from a CSV: floats, strings (object -> str), int, bool.
    frame = frame.astype(
        {"monthly_charges": "float64", "total_charges": "float64", "contract": "str",
         "payment": "str"}
    )  # fmt: skip
    return frame, churned


def churn_pipeline(*, by_name: bool) -> Any:
    """Imputers, scaling and one-hot encoding into a logistic regression; the transformer selects
    columns by name (for a DataFrame) or by their index in CHURN_COLUMNS (for an array)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def select(names: Sequence[str]) -> list[str] | list[int]:
        return list(names) if by_name else [CHURN_COLUMNS.index(n) for n in names]

    columns = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
             select(CHURN_NUMERIC)),
            ("categories", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                         OneHotEncoder(handle_unknown="ignore")),
             select(CHURN_CATEGORIES)),
            ("flags", "passthrough", select(CHURN_BOOLEAN)),
        ]
    )  # fmt: skip
    return Pipeline([("columns", columns), ("classify", LogisticRegression(max_iter=1000))])


def save_churn_model(
    directory: Path, *, rows: int = 800, classes: str = "int", fitted_on: str = "frame"
) -> SavedModel:
    """The churn pipeline fitted on `rows` rows, saved as `churn.skops` (or `churn-array.skops`),
    with its reference CSV (the same rows and the target column).

    `classes`: "int" (0 and 1) or "bool" (False and True); `fitted_on`: "frame" (columns by name)
    or "array" (the same data as an object array, columns by index: the array twin).
    """
    frame, churned = churn_frame(rows)
    y: np.ndarray = churned.astype(bool) if classes == "bool" else churned
    estimator = churn_pipeline(by_name=fitted_on == "frame")
    if fitted_on == "frame":
        estimator.fit(frame, y)
    else:
        estimator.fit(as_array(frame), y)
    stem = "churn" if fitted_on == "frame" else "churn-array"
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / f"{stem}-{classes}.skops"
    _dump(estimator, model_path)
    if fitted_on == "array":
        # An array holds the boolean as the number it was fitted on (the packager would read
        # True and False in a CSV as the categories an array model of strings saw).
        frame = frame.astype(dict.fromkeys(CHURN_BOOLEAN, "int64"))
    reference = directory / f"{stem}-{classes}.csv"
    write_reference(reference, frame.assign(**{CHURN_TARGET: y}))
    return SavedModel(estimator, model_path, reference, frame, CHURN_TARGET)


def as_array(frame: pd.DataFrame) -> np.ndarray:
    """The frame as the object array a model fitted on arrays takes: numbers as floats, missing
    values as NaN (what the service hands a model with categories)."""
    return np.column_stack(
        [
            frame[c].to_numpy(dtype=object, na_value=np.nan)
            if frame[c].dtype.kind not in "fiub"
            else frame[c].to_numpy(dtype=np.float64).astype(object)
            for c in frame.columns
        ]
    )


def save_diabetes_regressor(directory: Path) -> SavedModel:
    """A HistGradientBoostingRegressor fitted on the diabetes data (442 rows, 10 float columns)
    with MISSING_SHARE of `bmi` and `s5` blanked out, saved as `diabetes.skops`."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingRegressor

    data = load_diabetes(as_frame=True)
    frame = data.frame.drop(columns="target")
    rng = np.random.default_rng(1)
    for column in DIABETES_NULLABLE:
        frame.loc[rng.random(len(frame)) < MISSING_SHARE, column] = np.nan
    estimator = HistGradientBoostingRegressor(max_iter=60, random_state=0).fit(
        frame, data.frame["target"]
    )
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / "diabetes.skops"
    _dump(estimator, model_path)
    reference = directory / "diabetes.csv"
    write_reference(reference, frame)
    return SavedModel(estimator, model_path, reference, frame)


@dataclass(frozen=True)
class PackagedModel:
    """A saved model and the bundle `lucidserve package` made of it."""

    saved: SavedModel
    bundle: Path


def package_diabetes_regressor(directory: Path) -> PackagedModel:
    """The diabetes regressor packaged into `directory / "bundle"` by the real CLI: named
    `diabetes`, `age` declared nullable."""
    saved = save_diabetes_regressor(directory)
    out = directory / "bundle"
    extra = ("--name", "diabetes", "--trust", HIST_TREES, "--nullable", DIABETES_DECLARED_NULLABLE)
    result = package(saved, out, *extra)
    if result.returncode != 0:
        raise RuntimeError(f"lucidserve package failed: {result.stderr}")
    return PackagedModel(saved, out)


def start_package(model: Path, reference: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    """The real `lucidserve package` command, started (several can run side by side)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [str(BIN / "lucidserve"), "package", str(model), "--reference", str(reference),
         "--out", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def churn_frame_card(frame: pd.DataFrame, *, numeric_bound: float | None = None) -> ModelCard:
    """A card as `lucidserve package` makes it for a classifier fitted on `frame` (which has a
    `tenure` column: the predicted class is tenure > 30), without an estimator behind it."""
    specs, arrays = infer_features(frame, max_text_length=100, keep_dtypes=True)
    predictions = (frame["tenure"] > 30).astype(str).to_numpy()
    return ModelCard(
        name="churn",
        version="1",
        created="2026-01-01T00:00:00+00:00",
        sklearn_version="1",
        task="classification",
        input_format="frame",
        features=specs,
        classes=["False", "True"],
        numeric_bound=numeric_bound,
        estimator_file="model.skops",
        estimator_format="skops",
        estimator_sha256="0" * 64,
        drift=build_reference(specs, arrays, predictions, ["False", "True"]),
    )


def write_reference(path: Path, frame: pd.DataFrame) -> None:
    """The frame as a CSV: blanks for missing values, booleans as True/False, floats in full."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(frame.columns)
        for row in frame.itertuples(index=False):
            writer.writerow(["" if _missing(v) else repr(v) if isinstance(v, float) else v
                             for v in (python_value(x) for x in row)])  # fmt: skip


def samples(frame: pd.DataFrame, order: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The frame's rows as JSON samples: keys in `order` (default: the frame's), missing values
    as None, NumPy scalars as Python ones."""
    keys = list(order or frame.columns)
    return [
        {k: python_value(v) for k, v in zip(keys, row, strict=True)}
        for row in frame[keys].itertuples(index=False)
    ]


def python_value(value: Any) -> Any:
    """A NumPy or pandas scalar as the JSON value a client sends (None for a missing value)."""
    if _missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def package(saved: SavedModel, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`lucidserve package` on a saved model (its target column named when it has one); the
    completed process, whatever its exit code."""
    target = ["--target", saved.target] if saved.target else []
    return run_package(saved.model_path, saved.reference, out, *target, *extra)


def run_package(
    model: Path, reference: Path, out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """The real `lucidserve package` command, as a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [str(BIN / "lucidserve"), "package", str(model), "--reference", str(reference),
         "--out", str(out), *extra],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _dump(estimator: Any, path: Path) -> None:
    import skops.io as sio

    sio.dump(estimator, path)
