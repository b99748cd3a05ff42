"""DriftMonitor in process: counting, statistics on the iris model, gauges, window, pooling."""

from __future__ import annotations

import math
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from lucidserve.bundle.card import DriftReference, FeatureSpec, ModelCard, NumericBins
from lucidserve.bundle.reference import PREDICTION, build_reference
from lucidserve.bundle.train import train
from lucidserve.observability.drift import DriftMonitor
from lucidserve.observability.metrics import local_drift_counts
from lucidserve.settings import Settings
from tests.support.drift_monitors import FakeClock, count_as_worker, make_monitor, send
from tests.support.iris_traffic import as_columns, iris_rows

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(scope="module")
def iris_card(tmp_path_factory: pytest.TempPathFactory) -> ModelCard:
    return train("iris", tmp_path_factory.mktemp("drift") / "iris")


def send_with_predictions(monitor: DriftMonitor, rows: np.ndarray, labels: np.ndarray) -> None:
    for start in range(0, len(rows), 100):
        monitor.observe(as_columns(rows[start : start + 100]), labels[start : start + 100])


def gauge(registry: CollectorRegistry, name: str, feature: str) -> float | None:
    return registry.get_sample_value(
        name, {"model_name": "iris", "model_version": "1.0.0", "feature": feature}
    )


def test_training_traffic_shows_no_drift(iris_card: ModelCard) -> None:
    monitor, _ = make_monitor(iris_card)
    send(monitor, iris_rows(2000, seed=1))
    features = monitor.summary()["features"]
    for name in ("sepal_length", "sepal_width", "petal_length", "petal_width"):
        assert features[name]["observations"] == 2000
        assert features[name]["psi"] < 0.1, name
        assert features[name]["status"] == "ok"


def test_a_shifted_feature_alerts_and_the_others_stay_ok(iris_card: ModelCard) -> None:
    monitor, _ = make_monitor(iris_card)
    send(monitor, iris_rows(2000, seed=2, shift={"petal_length": 1.5}))
    features = monitor.summary()["features"]
    assert features["petal_length"]["psi"] > 0.25
    assert features["petal_length"]["pvalue"] < 0.001
    assert features["petal_length"]["status"] == "alert"
    for name in ("sepal_length", "sepal_width", "petal_width"):
        assert features[name]["psi"] < 0.1, name


def test_each_batch_increments_the_bin_counters_exactly(iris_card: ModelCard) -> None:
    monitor, registry = make_monitor(iris_card)
    rows = iris_rows(250, seed=3)
    send(monitor, rows, batch=64)
    assert iris_card.drift is not None
    spec = iris_card.drift.features["petal_length"]
    assert isinstance(spec, NumericBins)
    counts = np.bincount(
        np.searchsorted(spec.edges, rows[:, 2], side="right"), minlength=len(spec.bins)
    )
    for label, expected in zip(spec.bins, counts.tolist(), strict=True):
        value = registry.get_sample_value(
            "model_drift_observations_total",
            {"model_name": "iris", "model_version": "1.0.0", "feature": "petal_length",
             "bin": label},
        )  # fmt: skip
        assert value == expected, label


def test_every_bin_counter_exists_before_any_traffic(iris_card: ModelCard) -> None:
    _, registry = make_monitor(iris_card)
    labels = {"model_name": "iris", "model_version": "1.0.0", "feature": PREDICTION}
    assert iris_card.drift is not None
    for label in iris_card.drift.prediction.bins:
        sample = registry.get_sample_value(
            "model_drift_observations_total", {**labels, "bin": label}
        )
        assert sample == 0.0


def test_below_the_minimum_no_statistic_is_a_number(iris_card: ModelCard) -> None:
    monitor, registry = make_monitor(iris_card)
    send(monitor, iris_rows(499, seed=4, shift={"petal_length": 3.0}))
    for feature in (*(f.name for f in iris_card.features), PREDICTION):
        assert math.isnan(gauge(registry, "model_drift_psi", feature) or 0.0)
        assert math.isnan(gauge(registry, "model_drift_pvalue", feature) or 0.0)
        assert gauge(registry, "model_drift_insufficient_data", feature) == 1.0
        assert gauge(registry, "model_drift_window_observations", feature) == 499.0
    body = monitor.summary()
    assert body["status"] == "insufficient_data"
    assert body["features"]["petal_length"]["psi"] is None


def test_at_the_minimum_the_gauges_carry_the_statistics(iris_card: ModelCard) -> None:
    monitor, registry = make_monitor(iris_card, drift_min_samples=500)
    send(monitor, iris_rows(500, seed=5, shift={"petal_length": 3.0}))
    assert gauge(registry, "model_drift_insufficient_data", "petal_length") == 0.0
    assert (gauge(registry, "model_drift_psi", "petal_length") or 0.0) > 0.25
    assert monitor.summary()["features"]["petal_length"]["status"] == "alert"


def test_the_reference_ratio_gauges_hold_the_reference(iris_card: ModelCard) -> None:
    _, registry = make_monitor(iris_card)
    assert iris_card.drift is not None
    spec = iris_card.drift.features["sepal_width"]
    for label, proportion in zip(spec.bins, spec.proportions, strict=True):
        value = registry.get_sample_value(
            "model_drift_reference_ratio",
            {"model_name": "iris", "model_version": "1.0.0", "feature": "sepal_width",
             "bin": label},
        )  # fmt: skip
        assert value == proportion


def test_the_window_forgets_shifted_traffic(iris_card: ModelCard) -> None:
    clock = FakeClock()
    monitor, _ = make_monitor(iris_card, clock, drift_window_seconds=60, drift_slot_seconds=10)
    send(monitor, iris_rows(1000, seed=6, shift={"petal_length": 1.5}))
    assert monitor.summary()["features"]["petal_length"]["status"] == "alert"
    clock.now += 30
    send(monitor, iris_rows(1000, seed=7))
    assert monitor.summary()["features"]["petal_length"]["status"] != "ok"
    clock.now += 40  # the shifted slot is now more than 60 s old
    summary = monitor.summary()
    assert summary["features"]["petal_length"]["observations"] == 1000
    assert summary["features"]["petal_length"]["status"] == "ok"


def test_the_prediction_is_tracked_by_class(iris_card: ModelCard) -> None:
    monitor, _ = make_monitor(iris_card)
    rows = iris_rows(600, seed=8)
    send_with_predictions(monitor, rows, np.full(600, "setosa", dtype=object))
    prediction = monitor.summary()["features"][PREDICTION]
    observed = {b["bin"]: b["observed"] for b in prediction["bins"]}
    assert observed["setosa"] == 1.0
    assert prediction["status"] == "alert"


def test_two_processes_report_the_statistics_of_their_pooled_traffic(
    iris_card: ModelCard, tmp_path: Path
) -> None:
    shares = [iris_rows(1000, seed=seed, shift={"petal_length": 0.3}) for seed in (11, 12)]
    children = [
        SPAWN.Process(
            target=count_as_worker,
            args=(iris_card.model_dump_json(), tmp_path, rows, 1_000_000.0),
        )
        for rows in shares
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    pooled, _ = make_monitor(iris_card, FakeClock(1_000_000.0), window_dir=tmp_path)
    single, _ = make_monitor(iris_card, FakeClock(1_000_000.0))
    for rows in shares:
        send(single, rows)
    assert pooled.summary() == single.summary()
    assert pooled.summary()["features"]["petal_length"]["observations"] == 2000


@pytest.fixture
def mixed_reference() -> tuple[list[FeatureSpec], DriftReference]:
    features = [
        FeatureSpec(name="colour", type="category", categories=["red", "green", "missing"]),
        FeatureSpec(name="note", type="text"),
        FeatureSpec(name="size", type="number"),
    ]
    rng = np.random.default_rng(0)
    columns = {
        "colour": rng.choice(np.array(["red", "green", "missing", None], dtype=object), 300),
        "note": rng.choice(np.array(["a", "bb", "ccc dd", "", None], dtype=object), 300),
        "size": np.where(rng.random(300) < 0.1, np.nan, rng.normal(10, 2, 300)),
    }
    predictions = rng.normal(1.0, 0.5, 300)  # a regressor
    return features, build_reference(features, columns, predictions, None)


def test_categories_texts_and_regression_bin_as_the_reference_does(
    mixed_reference: tuple[list[FeatureSpec], DriftReference],
) -> None:
    features, reference = mixed_reference
    registry = CollectorRegistry()
    monitor = DriftMonitor(
        reference,
        features,
        Settings(drift_min_samples=1),
        model=("mixed", "1"),
        count_cells=lambda cells: local_drift_counts(registry, "mixed", "1", cells),
    )
    columns = {
        "colour": np.array(["red", "missing", None, "", "blue", "green"], dtype=object),
        "note": np.array(["a", "", None, "ccc dd", "x" * 500, "bb"], dtype=object),
        "size": np.array([10.0, np.nan, -100.0, 100.0, 9.0, 11.0]),
    }
    monitor.observe(columns, np.array([1.0, 1.2, np.nan, 0.9, 99.0, 1.1]))
    observed = {
        name: {b["bin"]: round(b["observed"] * 6) for b in spec["bins"] if b["observed"]}
        for name, spec in monitor.summary()["features"].items()
    }
    assert observed["colour"] == {"red": 1, "missing": 1, "__missing__": 2, "__other__": 1,
                                  "green": 1}  # fmt: skip
    assert observed["size"]["missing"] == 1
    assert observed["size"]["underflow"] == 1
    assert observed["size"]["overflow"] == 1
    assert observed["note"]["missing"] == 1
    assert observed["note"]["overflow"] == 1
    assert observed[PREDICTION]["missing"] == 1
    assert observed[PREDICTION]["overflow"] == 1
