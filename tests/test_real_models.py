"""The models people already have, packaged with the real `lucidserve package` and served by a real
server (two workers): a pipeline fitted on a DataFrame whose transformer selects columns by name,
missing values, a regressor, integer and boolean classes, drift of inputs and outputs, and the
models `package` refuses.

Each model is packaged once and served once for the whole module (module-scoped fixtures); the
traffic is seeded, a few thousand rows in all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lucidserve.bundle.reference import PREDICTION
from tests.support.frame_models import (
    CHURN_COLUMNS,
    CHURN_NULLABLE,
    DIABETES_DECLARED_NULLABLE,
    DIABETES_NULLABLE,
    PackagedModel,
    SavedModel,
    churn_frame,
    package,
    samples,
    save_churn_model,
    start_package,
    write_reference,
)
from tests.support.processes import Service, start_service, wait_until

pytestmark = pytest.mark.slow

# skops trusts scikit-learn's own types; these two it does not by default (see save_* in
# tests/support/frame_models.py): the pipeline's fitted dtypes and the regressor's trees.
CHURN_TRUST = ("--trust", "numpy.dtype")
TOLERANCE = 1e-9
BATCH = 100
DRIFT_ROWS = 1000  # over the default minimum sample size (500), per traffic


@dataclass(frozen=True)
class Served:
    """A saved model, its bundle's card, and the server that serves the bundle."""

    saved: SavedModel
    card: dict[str, Any]
    service: Service


def serve(saved: SavedModel, tmp: Path, *trust: str, workers: int = 2) -> Iterator[Served]:
    """Package `saved` with the real CLI, serve the bundle; stop it after."""
    bundle = tmp / "bundle"
    done = package(saved, bundle, *trust)
    assert done.returncode == 0, done.stderr
    yield from serve_bundle(saved, bundle, tmp, workers=workers)


def serve_bundle(
    saved: SavedModel, bundle: Path, tmp: Path, *, workers: int = 2
) -> Iterator[Served]:
    """Serve a packaged bundle (two workers by default); stop it after."""
    card = json.loads((bundle / "card.json").read_text())
    service = start_service(bundle, tmp / "service.log", workers=workers)
    try:
        yield Served(saved, card, service)
    finally:
        service.stop()


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The churn pipeline fitted on a DataFrame, integer classes 0 and 1."""
    tmp = tmp_path_factory.mktemp("churn")
    yield from serve(save_churn_model(tmp), tmp, *CHURN_TRUST)


@pytest.fixture(scope="module")
def churn_bool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The same pipeline fitted on boolean classes, False and True (one worker: what is checked
    is the labels, the same in every worker)."""
    tmp = tmp_path_factory.mktemp("churn-bool")
    saved = save_churn_model(tmp, rows=300, classes="bool")
    yield from serve(saved, tmp, *CHURN_TRUST, workers=1)


@pytest.fixture(scope="module")
def diabetes(
    diabetes_model: PackagedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The diabetes regressor (tests/conftest.py), served."""
    tmp = tmp_path_factory.mktemp("diabetes")
    yield from serve_bundle(diabetes_model.saved, diabetes_model.bundle, tmp)


def predict(service: Service, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST `rows` to /v1/predict in batches of BATCH; every prediction, in order."""
    predictions: list[dict[str, Any]] = []
    for start in range(0, len(rows), BATCH):
        response = service.client.post("/v1/predict", json={"samples": rows[start : start + BATCH]})
        assert response.status_code == 200, response.text
        predictions += response.json()["predictions"]
    return predictions


def shuffled_keys(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Each row with its keys in a random order (none in the fitted one)."""
    rng = np.random.default_rng(seed)
    out = []
    for row in rows:
        keys = list(row)
        while keys == list(row):
            keys = [keys[i] for i in rng.permutation(len(keys))]
        out.append({k: row[k] for k in keys})
    return out


def with_extra_nulls(frame: pd.DataFrame, columns: Sequence[str], seed: int) -> pd.DataFrame:
    """20 rows of `frame` with every column of `columns` missing."""
    rows = frame.sample(20, random_state=seed).copy()
    for column in columns:
        rows[column] = pd.Series(np.nan, index=rows.index, dtype=frame[column].dtype)
    return rows


# (a) A DataFrame pipeline that selects its columns by name -----------------------------------


def test_churn_card_describes_the_frame_its_dtypes_and_nullable_features(churn: Served) -> None:
    card = churn.card
    assert card["input_format"] == "frame"
    assert card["task"] == "classification"
    assert card["classes"] == ["0", "1"]
    features = {f["name"]: f for f in card["features"]}
    assert list(features) == list(CHURN_COLUMNS)  # the fitted order, not the selection order
    assert {n for n, f in features.items() if f["nullable"]} == set(CHURN_NULLABLE)
    assert (features["tenure"]["type"], features["tenure"]["dtype"]) == ("number", "int64")
    assert (features["paperless"]["type"], features["paperless"]["dtype"]) == ("boolean", "bool")
    assert features["monthly_charges"]["dtype"] == "float64"
    assert features["contract"]["type"] == "category"
    assert features["contract"]["dtype"] in ("str", "object")
    paperless = card["drift"]["features"]["paperless"]
    assert (paperless["kind"], set(paperless["categories"])) == ("categorical", {"False", "True"})


def test_churn_answers_the_in_process_probabilities_whatever_the_key_order(churn: Served) -> None:
    frame = churn.saved.frame
    expected = churn.saved.estimator.predict_proba(frame)
    predictions = predict(churn.service, shuffled_keys(samples(frame), seed=1))
    assert len(predictions) == len(frame)
    served = np.array([[p["probabilities"]["0"], p["probabilities"]["1"]] for p in predictions])
    np.testing.assert_allclose(served, expected, rtol=0, atol=TOLERANCE)
    labels = churn.saved.estimator.predict(frame)
    assert [p["label"] for p in predictions] == [str(v) for v in labels]


def test_churn_takes_null_for_every_nullable_feature(churn: Served) -> None:
    rows = with_extra_nulls(churn.saved.frame, CHURN_NULLABLE, seed=2)
    payload = samples(rows, order=list(reversed(CHURN_COLUMNS)))
    assert all(payload[0][name] is None for name in CHURN_NULLABLE)
    predictions = predict(churn.service, payload)
    expected = churn.saved.estimator.predict_proba(rows)[:, 1]
    served = np.array([p["probabilities"]["1"] for p in predictions])
    np.testing.assert_allclose(served, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("feature", ["tenure", "paperless"])
def test_churn_refuses_null_for_a_feature_without_blanks(churn: Served, feature: str) -> None:
    (row,) = samples(churn.saved.frame.head(1))
    response = churn.service.client.post("/v1/predict", json={"samples": [{**row, feature: None}]})
    assert response.status_code == 422, response.text
    assert feature in response.text


def test_churn_refuses_a_fraction_for_an_integer_feature(churn: Served) -> None:
    (row,) = samples(churn.saved.frame.head(1))
    response = churn.service.client.post("/v1/predict", json={"samples": [{**row, "tenure": 12.5}]})
    assert response.status_code == 422, response.text


def test_openapi_shows_the_nullable_features_as_nullable(churn: Served) -> None:
    spec = churn.service.client.get("/openapi.json").json()
    properties = spec["components"]["schemas"]["Sample"]["properties"]
    nullable = {name for name, schema in properties.items() if accepts_null(schema)}
    assert nullable == set(CHURN_NULLABLE)
    assert properties["paperless"].get("type") == "boolean"
    assert properties["tenure"].get("type") == "integer"


def accepts_null(schema: dict[str, Any]) -> bool:
    """Whether a JSON schema (OpenAPI 3.1) accepts null."""
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(accepts_null(s) for s in [*schema.get("anyOf", []), *schema.get("oneOf", [])])


def test_integer_classes_are_labels_and_the_label_route_takes_1(churn: Served) -> None:
    frame = churn.saved.frame.head(5)
    response = churn.service.client.post("/v1/predict/1", json={"samples": samples(frame)})
    assert response.status_code == 200, response.text
    assert response.json()["label"] == "1"
    expected = churn.saved.estimator.predict_proba(frame)[:, 1]
    np.testing.assert_allclose(response.json()["probabilities"], expected, rtol=0, atol=TOLERANCE)


def test_boolean_classes_are_labelled_false_and_true_everywhere(churn_bool: Served) -> None:
    assert churn_bool.card["classes"] == ["False", "True"]
    frame = churn_bool.saved.frame.head(40)
    predictions = predict(churn_bool.service, samples(frame))
    expected = churn_bool.saved.estimator.predict(frame)
    assert [p["label"] for p in predictions] == [str(v) for v in expected]
    assert {p["label"] for p in predictions} == {"False", "True"}
    assert all(set(p["probabilities"]) == {"False", "True"} for p in predictions)
    response = churn_bool.service.client.post(
        "/v1/predict/True", json={"samples": samples(frame.head(3))}
    )
    assert response.status_code == 200, response.text
    expected_true = churn_bool.saved.estimator.predict_proba(frame.head(3))[:, 1]
    np.testing.assert_allclose(
        response.json()["probabilities"], expected_true, rtol=0, atol=TOLERANCE
    )
    text = churn_bool.service.metrics()
    counted = {
        s.labels["label"]
        for family in text_string_to_metric_families(text)
        if family.name == "model_predictions"
        for s in family.samples
        if s.name == "model_predictions_total"
    }
    assert counted
    assert counted <= {"False", "True"}


# (b) A regressor ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def diabetes_predictions(diabetes: Served) -> dict[str, Any]:
    """Every diabetes row, then 20 rows with blanks in the nullable columns (the declared one
    too): served values, the in-process ones, and the request id of the first request."""
    nullable = (*DIABETES_NULLABLE, DIABETES_DECLARED_NULLABLE)
    frame = pd.concat([diabetes.saved.frame, with_extra_nulls(diabetes.saved.frame, nullable, 3)])
    rows = shuffled_keys(samples(frame), seed=4)
    first = diabetes.service.client.post("/v1/predict", json={"samples": rows[:BATCH]})
    assert first.status_code == 200, first.text
    predictions = first.json()["predictions"] + predict(diabetes.service, rows[BATCH:])
    return {
        "served": predictions,
        "expected": diabetes.saved.estimator.predict(frame),
        "first": first.json(),
    }


def test_diabetes_card_is_a_regression_with_numeric_prediction_bins(diabetes: Served) -> None:
    card = diabetes.card
    assert (card["task"], card["classes"], card["input_format"]) == ("regression", None, "frame")
    nullable = {f["name"] for f in card["features"] if f["nullable"]}
    assert nullable == {*DIABETES_NULLABLE, DIABETES_DECLARED_NULLABLE}
    prediction = card["drift"]["prediction"]
    assert prediction["kind"] == "numeric"
    assert prediction["bins"][-1] == "missing"
    assert card["drift"]["features"]["bmi"]["proportions"][-1] > 0  # its blanks


def test_regressor_answers_the_in_process_values(diabetes_predictions: dict[str, Any]) -> None:
    served = diabetes_predictions["served"]
    assert all(set(p) == {"value"} for p in served)
    values = np.array([p["value"] for p in served])
    np.testing.assert_allclose(values, diabetes_predictions["expected"], rtol=0, atol=TOLERANCE)
    assert len(set(values.tolist())) > 200  # hundreds of distinct values


def test_regressor_metrics_have_no_series_per_value_and_a_value_histogram(
    diabetes: Served, diabetes_predictions: dict[str, Any]
) -> None:
    values = {str(p["value"]) for p in diabetes_predictions["served"]}
    families = list(text_string_to_metric_families(diabetes.service.metrics()))
    samples_ = [s for family in families for s in family.samples]
    assert not [s for s in samples_ if s.name == "model_predictions_total"]
    assert not [s for s in samples_ if s.name.startswith("model_prediction_confidence")]
    label_values = {v for s in samples_ for k, v in s.labels.items() if k != "le"}
    assert not label_values & values
    buckets = [
        s for s in samples_ if s.name == "model_prediction_value_bucket"
        and s.labels["model_name"] == diabetes.card["name"]
    ]  # fmt: skip
    bounds = sorted(float(s.labels["le"]) for s in buckets)
    assert bounds[-1] == float("inf")
    np.testing.assert_allclose(bounds[:-1], diabetes.card["drift"]["prediction"]["edges"])
    count = next(s.value for s in samples_ if s.name == "model_prediction_value_count")
    assert count >= len(diabetes_predictions["served"])


def test_the_label_route_of_a_regressor_is_a_404_with_a_json_error(diabetes: Served) -> None:
    body = {"samples": samples(diabetes.saved.frame.head(1))}
    response = diabetes.service.client.post("/v1/predict/150", json=body)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"], error
    assert "regress" in error["message"].lower(), error


def test_regressor_prediction_lines_carry_the_value(
    diabetes: Served, diabetes_predictions: dict[str, Any]
) -> None:
    first = diabetes_predictions["first"]

    def lines() -> list[dict[str, Any]] | None:
        found = [
            record
            for record in map(json_line, diabetes.service.log_lines())
            if record.get("event") == "prediction"
            and record.get("request_id") == first["request_id"]
        ]
        return found if len(found) == len(first["predictions"]) else None

    found = wait_until(lines, timeout=10, what="the first request's prediction lines")
    assert sorted(r["value"] for r in found) == sorted(p["value"] for p in first["predictions"])
    assert all(r.get("label") is None for r in found)


def json_line(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


# (c) Drift of inputs with nulls, and of a regressor's outputs -----------------------------------


def drift_view(service: Service) -> dict[str, Any]:
    """/v1/drift's body, and model_drift_psi per feature from the metrics port."""
    psi = {
        s.labels["feature"]: s.value
        for family in text_string_to_metric_families(service.metrics())
        if family.name == "model_drift_psi"
        for s in family.samples
    }
    response = service.client.get("/v1/drift")
    assert response.status_code == 200, response.text
    return {"drift": response.json(), "psi": psi}


def traffic_views(served: Served, shift: dict[str, Any], seed: int) -> dict[str, Any]:
    """What the service reports after DRIFT_ROWS reference rows (blanks sent as null), and after
    three times as many again with `shift` (column -> function of the column) applied."""
    frame = served.saved.frame
    normal = frame.sample(DRIFT_ROWS, replace=True, random_state=seed)
    predict(served.service, samples(normal))
    views = {"normal": drift_view(served.service)}
    shifted = frame.sample(3 * DRIFT_ROWS, replace=True, random_state=seed + 1)
    shifted = shifted.assign(**{column: move(shifted[column]) for column, move in shift.items()})
    predict(served.service, samples(shifted))
    views["shifted"] = drift_view(served.service)
    return views


@pytest.fixture(scope="module")
def churn_drift(churn: Served) -> dict[str, Any]:
    return traffic_views(churn, {"monthly_charges": lambda c: c * 3}, seed=5)


@pytest.fixture(scope="module")
def diabetes_drift(diabetes: Served) -> dict[str, Any]:
    # bmi and s5 weigh most in the diabetes progression: the predictions move up with them.
    shift = {"bmi": lambda c: c + 0.08, "s5": lambda c: c + 0.08}
    return traffic_views(diabetes, shift, seed=6)


@pytest.mark.parametrize("model", ["churn_drift", "diabetes_drift"])
def test_reference_like_traffic_with_nulls_gives_no_drift_warning(
    model: str, request: pytest.FixtureRequest
) -> None:
    view = request.getfixturevalue(model)["normal"]
    drift = view["drift"]
    assert drift["status"] == "ok", drift
    assert PREDICTION in drift["features"]
    for feature, statistics in drift["features"].items():
        assert statistics["status"] == "ok", (feature, statistics)
        assert statistics["psi"] < drift["warn_psi"], feature
        assert view["psi"][feature] == pytest.approx(statistics["psi"])


@pytest.mark.parametrize(
    ("model", "feature", "label"),
    [
        ("churn_drift", "monthly_charges", "missing"),
        ("churn_drift", "contract", "__missing__"),
        ("diabetes_drift", "bmi", "missing"),
    ],
)
def test_the_missing_bin_counts_the_nulls_sent(
    model: str, feature: str, label: str, request: pytest.FixtureRequest
) -> None:
    bins = request.getfixturevalue(model)["normal"]["drift"]["features"][feature]["bins"]
    missing = bins[-1]
    assert missing["bin"] == label
    assert missing["reference"] > 0.02
    assert missing["observed"] == pytest.approx(missing["reference"], abs=0.02)


def test_shifted_charges_give_a_drift_warning(churn_drift: dict[str, Any]) -> None:
    drift = churn_drift["shifted"]["drift"]
    assert drift["features"]["monthly_charges"]["status"] in ("warn", "alert")
    assert drift["features"]["monthly_charges"]["psi"] > drift["warn_psi"]
    assert drift["status"] in ("warn", "alert")


def test_shifted_inputs_move_the_regressors_output_drift(diabetes_drift: dict[str, Any]) -> None:
    view = diabetes_drift["shifted"]
    drift = view["drift"]
    for feature in ("bmi", "s5", PREDICTION):
        assert drift["features"][feature]["status"] in ("warn", "alert"), feature
        assert view["psi"][feature] > drift["warn_psi"], feature
    assert drift["features"][PREDICTION]["kind"] == "numeric"


# (d) What `package` refuses ------------------------------------------------------------------


def refusal(tmp: Path, case: str) -> tuple[Path, Path, str]:
    """A model file and a reference CSV that `package` must refuse, and a word its message must
    hold."""
    import skops.io as sio
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import StandardScaler

    if case == "reference columns":
        saved = save_churn_model(tmp, rows=200)
        renamed = saved.frame.drop(columns="payment").rename(columns={"tenure": "months"})
        reference = tmp / "renamed.csv"
        write_reference(reference, renamed)
        return saved.model_path, reference, "payment"
    frame, churned = churn_frame(200)
    numbers = frame[["tenure", "monthly_charges"]].fillna(0.0)
    reference = tmp / "numbers.csv"
    write_reference(reference, numbers)
    if case == "no predict":
        estimator: Any = StandardScaler().fit(numbers)
        word = "predict"
    else:
        estimator = LinearRegression().fit(numbers, np.column_stack([churned, churned * 2.0]))
        word = "output"
    model = tmp / "model.skops"
    sio.dump(estimator, model)
    return model, reference, word


def test_package_refuses_a_model_it_cannot_serve(tmp_path: Path) -> None:
    """No predict, several outputs, reference columns that are not the fitted ones: exit code 1,
    one line naming the problem, nothing written. The three commands run side by side."""
    started = {}
    for case in ("no predict", "multi-output", "reference columns"):
        tmp = tmp_path / case.replace(" ", "-")
        tmp.mkdir()
        model, reference, word = refusal(tmp, case)
        out = tmp / "bundle"
        started[case] = (start_package(model, reference, out, *CHURN_TRUST), word, out)
    for case, (process, word, out) in started.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 1, (case, stdout + stderr)
        message = [line for line in stderr.splitlines() if line.strip()]
        assert len(message) == 1, (case, stderr)
        assert word in message[0].lower(), (case, message)
        assert not out.exists(), case
