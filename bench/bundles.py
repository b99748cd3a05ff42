"""Bundles for the benchmarks: the built-in datasets, trained by `lucidserve train`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.server import LUCIDSERVE


class TrainingError(Exception):
    """`lucidserve train` failed; the message holds its stderr."""


def train_bundle(dataset: str, out: Path) -> Path:
    """Train `dataset` (iris, wine, breast_cancer) into the bundle directory `out`."""
    done = subprocess.run(
        [*LUCIDSERVE, "train", "--dataset", dataset, "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise TrainingError(f"training {dataset} failed:\n{done.stderr}")
    return out
