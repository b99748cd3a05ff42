"""A regressor as users ship one: HistGradientBoostingRegressor fitted on the diabetes DataFrame,
packaged through the real CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor

from tests.support.processes import BIN

# scikit-learn's type inside a HistGradientBoosting model, which skops does not trust by default.
HIST_TREES = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
NAME = "diabetes"


def package_diabetes_regressor(workdir: Path) -> Path:
    """The bundle directory of the regressor, its reference the whole diabetes frame."""
    frame = load_diabetes(as_frame=True).frame
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(
        frame.drop(columns="target"), frame["target"]
    )
    sio.dump(model, workdir / "model.skops")
    frame.to_csv(workdir / "reference.csv", index=False)
    subprocess.run(
        [str(BIN / "lucidserve"), "package", str(workdir / "model.skops"),
         "--reference", str(workdir / "reference.csv"), "--target", "target",
         "--name", NAME, "--out", str(workdir / "bundle"), "--trust", HIST_TREES],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return workdir / "bundle"


def diabetes_rows() -> list[dict[str, Any]]:
    """The reference rows as request samples."""
    rows: list[dict[str, Any]] = load_diabetes(as_frame=True).data.to_dict("records")
    return rows
