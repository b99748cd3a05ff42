"""Traffic for drift tests: rows drawn from the iris training distribution, seeded, with noise.

The rows come from exactly the training split `lucidserve train --dataset iris` uses, so "no
drift" means the model's own reference distribution (measured to 0.1 cm), plus a little noise.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from lucidserve.bundle.train import SEED

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
NOISE_CM = 0.02  # a fifth of the measurement resolution


def iris_rows(
    n: int, *, seed: int, shift: dict[str, float] | None = None, noise: float = NOISE_CM
) -> np.ndarray:
    """`n` rows (columns in FEATURES order) resampled from the training split, noised, shifted."""
    data = load_iris()
    train, _, _, _ = train_test_split(
        data.data, data.target, test_size=0.25, random_state=SEED, stratify=data.target
    )
    rng = np.random.default_rng(seed)
    rows = train[rng.integers(0, len(train), n)] + rng.normal(0.0, noise, (n, len(FEATURES)))
    for name, delta in (shift or {}).items():
        rows[:, FEATURES.index(name)] += delta
    return np.round(rows, 3)


def as_samples(rows: np.ndarray) -> list[dict[str, float]]:
    """The /v1/predict `samples` for `rows`."""
    return [dict(zip(FEATURES, map(float, row), strict=True)) for row in rows]


def as_columns(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Feature name -> column, as the inference path hands a batch to DriftMonitor.observe."""
    return {name: np.ascontiguousarray(rows[:, i]) for i, name in enumerate(FEATURES)}
