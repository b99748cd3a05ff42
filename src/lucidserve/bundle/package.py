"""`lucidserve package`: a team's fitted estimator plus a reference sample, made into a bundle."""

from __future__ import annotations

import csv
import pickle
import shutil
import sys
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sklearn

from lucidserve.bundle.card import FeatureSpec, InputFormat, ModelCard
from lucidserve.bundle.features import given_examples, infer_features
from lucidserve.bundle.inputs import model_input
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
) -> ModelCard:
    """Build a bundle in `out` from a fitted estimator file and a CSV sample of its inputs.

    `trusted` names the types beyond skops' defaults that the estimator may hold (else an
    UntrustedTypesError lists the missing ones); `examples` replaces the OpenAPI example of the
    features it names.
    """
    estimator, fmt = _load_estimator(model, trusted)
    columns = _read_csv(reference)
    y_true = columns.pop(target) if target is not None else None
    features, arrays = infer_features(columns, max_text_length=max_text_length)
    if examples:
        features = given_examples(features, examples)
    _check_feature_names(estimator, features)
    input_format: InputFormat = (
        "text" if len(features) == 1 and features[0].type == "text" else "array"
    )
    x = model_input([arrays[f.name] for f in features], input_format)
    predictions = np.asarray(estimator.predict(x))
    is_classifier = hasattr(estimator, "classes_") and hasattr(estimator, "predict_proba")
    classes = [str(c) for c in estimator.classes_] if is_classifier else None
    metrics: dict[str, float] = {"reference_rows": float(len(predictions))}
    if y_true is not None and classes is not None:
        metrics["reference_accuracy"] = float(np.mean(predictions.astype(str) == np.array(y_true)))
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


def _read_csv(path: Path) -> dict[str, list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise BundleError(f"{path} has no header row")
        columns: dict[str, list[str]] = {name: [] for name in reader.fieldnames}
        for row in reader:
            for name, values in columns.items():
                values.append(row.get(name) or "")
    if not next(iter(columns.values())):
        raise BundleError(f"{path} has no data rows")
    return columns


def _check_feature_names(estimator: Any, features: list[FeatureSpec]) -> None:
    expected = getattr(estimator, "feature_names_in_", None)
    if expected is not None and list(expected) != [f.name for f in features]:
        raise BundleError(
            f"the estimator was fitted on columns {list(expected)}, "
            f"the reference data has {[f.name for f in features]}"
        )


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
