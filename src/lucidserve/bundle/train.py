"""`lucidserve train`: the default models, trained on data that ships inside scikit-learn."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import sklearn
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lucidserve.bundle.card import ModelCard
from lucidserve.bundle.features import describe_numeric, identifier
from lucidserve.bundle.probe import numeric_bound
from lucidserve.bundle.reference import build_reference
from lucidserve.bundle.store import write_bundle

Dataset = Literal["iris", "wine", "breast_cancer"]
DATASETS: tuple[Dataset, ...] = ("iris", "wine", "breast_cancer")
SEED = 0
# The types skops does not trust by default that our own estimators hold: a forest's trees.
TRAINED_TYPES = ("sklearn.tree._tree.Tree",)

_DESCRIPTIONS = {
    "iris": "Iris species from sepal and petal measurements (Fisher, 1936).",
    "wine": "Wine cultivar from 13 chemical measurements (UCI wine recognition data).",
    "breast_cancer": "Malignant or benign tumour from 30 cell-nucleus measurements (Wisconsin).",
}


def train(dataset: Dataset, out: Path) -> ModelCard:
    """Train the default model for `dataset` and write its bundle to `out`."""
    data = _load(dataset)
    names = [identifier(n) for n in data.feature_names]
    classes = [str(c) for c in data.target_names]
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.25, random_state=SEED, stratify=data.target
    )
    estimator = _estimator(dataset)
    # Fit on plain arrays with string class labels, so the model answers in class names.
    labels = np.asarray(classes, dtype=object)
    estimator.fit(x_train, labels[y_train])
    predicted = estimator.predict(x_test)
    metrics = {
        "accuracy": float(accuracy_score(labels[y_test], predicted)),
        "f1_macro": float(f1_score(labels[y_test], predicted, average="macro")),
        "holdout_rows": float(len(y_test)),
        "train_rows": float(len(y_train)),
    }
    unit = "cm" if dataset == "iris" else None
    features = [
        describe_numeric(
            name,
            x_train[:, i],
            description=_feature_description(dataset, raw),
            unit=unit,
        )
        for i, (name, raw) in enumerate(zip(names, data.feature_names, strict=True))
    ]
    columns = {name: x_train[:, i] for i, name in enumerate(names)}
    reference = build_reference(features, columns, estimator.predict(x_train), classes)
    card: dict[str, Any] = {
        "name": dataset,
        "version": "1.0.0",
        "description": _DESCRIPTIONS[dataset],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "sklearn_version": sklearn.__version__,
        "task": "classification",
        "input_format": "array",
        "target": "species" if dataset == "iris" else "target",
        "features": features,
        "classes": classes,
        "numeric_bound": numeric_bound(estimator, features, "array"),
        "metrics": metrics,
        "drift": reference,
    }
    return write_bundle(out, estimator, card, trusted=TRAINED_TYPES)


def _load(dataset: Dataset) -> Any:
    loaders = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
    }
    return loaders[dataset]()


def _estimator(dataset: Dataset) -> Any:
    if dataset == "breast_cancer":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return RandomForestClassifier(n_estimators=100, random_state=SEED)


def _feature_description(dataset: Dataset, raw_name: str) -> str:
    if dataset == "iris":
        part, measure = raw_name.removesuffix(" (cm)").split(" ")
        return f"{part.capitalize()} {measure} of the flower, in centimetres."
    return f"{raw_name} (scikit-learn {dataset} dataset)."
