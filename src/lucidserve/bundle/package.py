"""`lucidserve package`: a team's fitted estimator plus a reference sample, made into a bundle.

The reference CSV is read as pandas reads it (blanks and "NA" are missing values). An estimator
fitted on a DataFrame (it has `feature_names_in_`) is served a DataFrame: the card records its
columns in the fitted order with their dtypes. Columns with blanks take `null`. The task comes
from the estimator. A model the service cannot serve is refused here, before anything is written:
no `predict`, several outputs, reference columns that are not the fitted ones, or reference data
the estimator cannot predict.
"""

from __future__ import annotations

import pickle
import shutil
import sys
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from lucidserve.bundle.card import InputFormat, ModelCard
from lucidserve.bundle.features import given_examples, infer_features
from lucidserve.bundle.inputs import ModelInput
from lucidserve.bundle.probe import numeric_bound
from lucidserve.bundle.reference import build_reference
from lucidserve.bundle.store import (
    BundleError,
    UntrustedTypesError,
    sha256_file,
    write_bundle,
    write_card,
)

TRUST_WARNING = (
    "WARNING: {path} is a {fmt} file. Loading it runs whatever code it contains: package and serve "
    "it only if you trust where it came from. lucidserve re-saves it with skops when it can."
)


def package(
    model: Path,
    reference: Path,
    out: Path,
    *,
    target: str | None = None,
    name: str | None = None,
    version: str = "1.0.0",
    handles_unknown_categories: bool = False,
    max_text_length: int = 10_000,
    trusted: Collection[str] = (),
    examples: Mapping[str, Any] | None = None,
    nullable: Collection[str] = (),
    dtypes: Mapping[str, str] | None = None,
) -> ModelCard:
    """Build a bundle in `out` from a fitted estimator file and a CSV sample of its inputs.

    `trusted` names the types beyond skops' defaults that the estimator may hold (else an
    UntrustedTypesError lists the missing ones); `examples` replaces the OpenAPI example of the
    features it names.
    """
    estimator, fmt = _load_estimator(model, trusted)
    if not callable(getattr(estimator, "predict", None)):
        raise BundleError(
            f"{type(estimator).__name__} has no predict method: lucidserve serves classifiers "
            "and regressors, not transformers"
        )
    frame = _read_csv(reference, dtypes or {})
    if target is not None and target not in frame.columns:
        raise BundleError(f"--target {target!r} is not a column of {reference}")
    y_true = frame.pop(target).to_numpy() if target is not None else None
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None:
        frame = frame[_fitted_columns([str(n) for n in fitted_names], list(frame.columns))]
    else:
        _check_width(estimator, list(frame.columns))
    features, arrays = infer_features(
        frame,
        max_text_length=max_text_length,
        keep_dtypes=fitted_names is not None,
        nullable=nullable,
    )
    if examples:
        features = given_examples(features, examples)
    input_format: InputFormat = (
        "frame"
        if fitted_names is not None
        else "text"
        if len(features) == 1 and features[0].type == "text"
        else "array"
    )
    x = ModelInput(features, input_format)([arrays[f.name] for f in features])
    predictions = _predict_reference(estimator, x)
    classes = _classes(estimator)
    metrics = _reference_metrics(predictions, y_true, classes)
    card: dict[str, Any] = {
        "name": name or model.stem,
        "version": version,
        "description": f"Packaged from {model.name} with reference data {reference.name}.",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "sklearn_version": sklearn.__version__,
        "task": "classification" if classes is not None else "regression",
        "input_format": input_format,
        "target": target,
        "features": features,
        "classes": classes,
        "probabilities": classes is not None and hasattr(estimator, "predict_proba"),
        "handles_unknown_categories": handles_unknown_categories,
        "numeric_bound": numeric_bound(estimator, features, input_format),
        "metrics": metrics,
        "drift": build_reference(features, arrays, predictions, classes),
    }
    try:
        return write_bundle(out, estimator, card, trusted=trusted)
    except UntrustedTypesError:
        raise
    except Exception as exc:  # skops cannot represent every custom class
        print(
            f"skops cannot save this estimator ({exc}); keeping {fmt}. Serving the bundle needs "
            "LUCIDSERVE_ALLOW_PICKLE=true.",
            file=sys.stderr,
        )
        return _write_original(out, model, fmt, card)


def _load_estimator(path: Path, trusted: Collection[str]) -> tuple[Any, str]:
    suffix = path.suffix.lower()
    if suffix == ".skops":
        import skops.io as sio

        needed = sio.get_untrusted_types(file=path)
        missing = set(needed) - set(trusted)
        if missing:
            raise UntrustedTypesError(str(path), missing)
        return sio.load(path, trusted=needed), "skops"
    fmt = "joblib" if suffix == ".joblib" else "pickle"
    print(TRUST_WARNING.format(path=path, fmt=fmt), file=sys.stderr)
    if fmt == "joblib":
        import joblib

        return joblib.load(path), fmt
    with path.open("rb") as handle:
        return pickle.load(handle), fmt  # noqa: S301 - the trust warning above is printed


def _read_csv(path: Path, dtypes: Mapping[str, str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not a CSV file with a header row: {exc}") from None
    if frame.empty:
        raise BundleError(f"{path} has no data rows")
    unknown = sorted(set(dtypes) - set(frame.columns))
    if unknown:
        raise BundleError(f"--dtype names columns {unknown} that {path} does not have")
    try:
        return frame.astype(dict(dtypes)) if dtypes else frame
    except (TypeError, ValueError) as exc:
        raise BundleError(f"--dtype: {exc}") from None


def _fitted_columns(fitted: list[str], found: list[str]) -> list[str]:
    """The fitted columns, in the fitted order; a BundleError naming any difference."""
    missing = [c for c in fitted if c not in found]
    extra = [c for c in found if c not in fitted]
    if missing or extra:
        raise BundleError(
            "the reference data's columns are not the ones the estimator was fitted on "
            f"(feature_names_in_): missing {missing}, not fitted on {extra}; give the target "
            "column with --target and drop any other"
        )
    return fitted


def _check_width(estimator: Any, found: list[str]) -> None:
    expected = getattr(estimator, "n_features_in_", None)
    if isinstance(expected, int) and expected != len(found):
        raise BundleError(
            f"the estimator was fitted on {expected} columns, the reference data has "
            f"{len(found)}: {found}; give the target column with --target"
        )


def _predict_reference(estimator: Any, x: Any) -> np.ndarray:
    """The estimator's predictions for the reference data: one value per row."""
    try:
        predictions = np.asarray(estimator.predict(x))
    except Exception as exc:
        raise BundleError(
            f"the estimator cannot predict the reference data: {' '.join(str(exc).split())}"
        ) from None
    if predictions.ndim != 1 or isinstance(getattr(estimator, "classes_", None), list):
        raise BundleError(
            f"predict returns an array of shape {predictions.shape}: "
            "multi-output models are not served; package one model per output"
        )
    return predictions


def _classes(estimator: Any) -> list[str] | None:
    """A classifier's classes as text (integers and booleans too); None for a regressor. A
    fitted classifier has `classes_` (a pipeline shows its last step's), whether or not it
    derives from scikit-learn's classes."""
    if not hasattr(estimator, "classes_"):
        return None
    return [str(c) for c in estimator.classes_]


def _reference_metrics(
    predictions: np.ndarray, y_true: np.ndarray | None, classes: list[str] | None
) -> dict[str, float]:
    metrics: dict[str, float] = {"reference_rows": float(len(predictions))}
    if y_true is None:
        return metrics
    if classes is not None:
        metrics["reference_accuracy"] = float(
            np.mean(predictions.astype(str) == y_true.astype(str))
        )
    else:
        errors = predictions.astype(np.float64) - y_true.astype(np.float64)
        metrics["reference_mae"] = float(np.mean(np.abs(errors)))
        metrics["reference_rmse"] = float(np.sqrt(np.mean(errors**2)))
    return metrics


def _write_original(out: Path, model: Path, fmt: str, card_fields: dict[str, Any]) -> ModelCard:
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"model.{'joblib' if fmt == 'joblib' else 'pkl'}"
    shutil.copyfile(model, target)
    card = ModelCard(
        **card_fields,
        estimator_file=target.name,
        estimator_format="joblib" if fmt == "joblib" else "pickle",
        estimator_sha256=sha256_file(target),
    )
    write_card(out, card)
    return card
