"""Small models the tests package with the real `lucidserve package` command."""

from __future__ import annotations

import csv
import os
import pickle
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.processes import BIN

NEWSGROUPS = {
    "rec.sport.hockey": [
        "the goalie made a great save in the third period",
        "he scored a hat trick on the power play",
        "the puck went off the post and the crowd went wild",
        "a slapshot from the blue line won the game in overtime",
        "the defenseman blocked the shot and cleared the puck",
        "the referee called a penalty for high sticking on the ice",
        "the team skated hard and won the hockey playoff series",
        "the winger passed the puck and the center scored",
    ],
    "sci.space": [
        "the rocket launched the satellite into low earth orbit",
        "astronauts on the space station studied the planet",
        "the telescope observed a distant galaxy and its stars",
        "the lunar lander touched down near the crater on the moon",
        "nasa announced a mission to mars with a new rover",
        "the orbit of the comet brings it close to the sun",
        "the shuttle crew performed a spacewalk to repair the module",
        "the probe sent images of jupiter and its moons",
    ],
    "comp.graphics": [
        "the renderer draws polygons with texture mapping and shading",
        "convert the image from jpeg to png with better compression",
        "ray tracing gives realistic reflections and shadows",
        "the graphics card renders the scene with many pixels",
        "the bitmap format stores colour values for every pixel",
        "use a vector format to scale the drawing without loss",
        "the shader computes lighting for each vertex of the mesh",
        "antialiasing smooths the jagged edges of lines on screen",
    ],
}


def package_text_model(tmp: Path, *extra: str) -> Path:
    """A TfidfVectorizer + MultinomialNB newsgroup classifier, packaged as a bundle."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    texts = [t for group in NEWSGROUPS.values() for t in group]
    labels = [label for label, group in NEWSGROUPS.items() for _ in group]
    model = make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(texts, labels)
    model_path = tmp / "newsgroups.joblib"
    import joblib

    joblib.dump(model, model_path)
    reference = tmp / "newsgroups.csv"
    _write_csv(reference, ["text", "topic"], zip(texts, labels, strict=True))
    return _package(model_path, reference, tmp / "newsgroups-bundle", "--target", "topic", *extra)


def package_mixed_model(tmp: Path) -> Path:
    """A model on one number and one category (one-hot encoded), packaged as a bundle."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    size = rng.uniform(0, 10, 200)
    colour = rng.choice(["red", "green", "blue"], 200)
    label = np.where((size > 5) | (colour == "red"), "big", "small")
    x = np.column_stack([size.astype(object), colour.astype(object)])
    model = make_pipeline(
        ColumnTransformer([("colour", OneHotEncoder(), [1]), ("size", "passthrough", [0])]),
        LogisticRegression(),
    ).fit(x, label)
    model_path = tmp / "mixed.pkl"
    model_path.write_bytes(pickle.dumps(model))
    reference = tmp / "mixed.csv"
    _write_csv(reference, ["size", "colour"], zip(size.tolist(), colour.tolist(), strict=True))
    return _package(model_path, reference, tmp / "mixed-bundle")


class Faulty:
    """A classifier for tests: x == 666 raises, x == 777 sleeps 0.5 s, x == 888 blocks for
    FAULTY_BLOCK_SECONDS, x == 999 gives a NaN probability; a slow or failing first call.

    The first prediction in a process (the server's warm-up) sleeps FAULTY_WARMUP_SECONDS, an
    environment variable, so a test can watch /readyz answer 503 until the model is warm; with
    FAULTY_BROKEN=1 every prediction raises, so the warm-up fails.
    """

    classes_ = np.array(["low", "high"], dtype=object)
    warmed = False

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if os.environ.get("FAULTY_BROKEN") == "1":
            raise RuntimeError("this model is broken")
        if not Faulty.warmed:
            Faulty.warmed = True
            time.sleep(float(os.environ.get("FAULTY_WARMUP_SECONDS", "0")))
        values = np.asarray(x, dtype=np.float64)[:, 0]
        if np.any(values == 666):
            raise ValueError("the model cannot handle 666")
        if np.any(values == 777):
            time.sleep(0.5)
        if np.any(values == 888):
            time.sleep(float(os.environ.get("FAULTY_BLOCK_SECONDS", "0")))
        high = (values > 5).astype(np.float64)
        high[values == 999] = np.nan
        return np.column_stack([1 - high, high])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


class Doubler:
    """A custom transformer (x -> 2x): a type that skops does not trust by default."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) * 2.0


def save_custom_skops_model(tmp: Path) -> tuple[Path, Path]:
    """A Doubler + LogisticRegression pipeline saved with skops, and its reference CSV."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    x = np.arange(20, dtype=np.float64).reshape(-1, 1)
    labels = np.where(x[:, 0] > 9, "high", "low").astype(object)
    model = make_pipeline(Doubler(), LogisticRegression()).fit(x, labels)
    model_path = tmp / "custom.skops"
    sio.dump(model, model_path)
    reference = tmp / "custom.csv"
    _write_csv(reference, ["x"], ((float(v),) for v in x[:, 0]))
    return model_path, reference


def package_faulty_model(tmp: Path) -> Path:
    """The Faulty classifier, saved with skops: its packager trusts the test class by name."""
    model_path = tmp / "faulty.pkl"
    model_path.write_bytes(pickle.dumps(Faulty()))
    reference = tmp / "faulty.csv"
    _write_csv(reference, ["x"], ((float(v),) for v in range(11)))
    return _package(
        model_path, reference, tmp / "faulty-bundle", "--trust", "tests.support.models.Faulty"
    )


def _write_csv(path: Path, header: list[str], rows: Any) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _package(model: Path, reference: Path, out: Path, *extra: str) -> Path:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run(
        [str(BIN / "lucidserve"), "package", str(model), "--reference", str(reference),
         "--out", str(out), *extra],
        check=True, capture_output=True, timeout=600, env=env,
    )  # fmt: skip
    return out


def package_large_forest(tmp: Path, *, trees: int = 10, rows: int = 60_000) -> Path:
    """A big forest, packaged as a skops bundle: extremely randomized trees grown on noise, so
    every tree is as deep as the data allows (10 trees on 60,000 rows of 20 features: about 75 MB).
    """
    import skops.io as sio
    from sklearn.ensemble import ExtraTreesClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, LARGE_FOREST_FEATURES))
    y = rng.choice(np.array(["no", "yes"], dtype=object), rows)
    model = ExtraTreesClassifier(n_estimators=trees, max_features=1, random_state=0).fit(x, y)
    model_path = tmp / "forest.skops"
    sio.dump(model, model_path)
    reference = tmp / "forest.csv"
    names = [f"f{i}" for i in range(LARGE_FOREST_FEATURES)]
    _write_csv(reference, names, x[:500].tolist())
    # A tree's node arrays are one type skops does not trust by default: the packager names it.
    return _package(
        model_path, reference, tmp / "forest-bundle", "--trust", "sklearn.tree._tree.Tree"
    )


LARGE_FOREST_FEATURES = 20
