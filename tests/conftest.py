"""Shared fixtures: the default model bundle (trained once), a running one-worker service, and
the diabetes regressor's bundle (packaged once)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.frame_models import PackagedModel, package_diabetes_regressor
from tests.support.processes import BIN, Service, start_service


@pytest.fixture(scope="session")
def iris_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default iris bundle, trained by the real CLI once per test session."""
    out = tmp_path_factory.mktemp("bundles") / "iris"
    subprocess.run(
        [str(BIN / "lucidserve"), "train", "--dataset", "iris", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


@pytest.fixture(scope="session")
def diabetes_model(tmp_path_factory: pytest.TempPathFactory) -> PackagedModel:
    """A HistGradientBoostingRegressor on the diabetes DataFrame (blanks in two columns, a third
    declared nullable), packaged by the real CLI once per test session."""
    return package_diabetes_regressor(tmp_path_factory.mktemp("diabetes"))


@pytest.fixture(scope="module")
def service(iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One real `lucidserve serve` process (one worker) on the default model."""
    log = tmp_path_factory.mktemp("service") / "service.log"
    svc = start_service(iris_bundle, log)
    yield svc
    svc.stop()
