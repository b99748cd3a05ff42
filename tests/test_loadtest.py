"""The Locust load scenarios (loadtest/): payloads, checks, shapes, limits, and real runs."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path
from random import Random
from typing import Any

import kubernetes_validate
import numpy as np
import pandas as pd
import pytest
import yaml

from loadtest.invalid_requests import invalid_requests
from loadtest.payloads import PayloadModel, Sample, draw_batch_size
from loadtest.shapes import plan
from loadtest.thresholds import Limits, breaches
from loadtest.validation import check_error, check_label_probabilities, check_predictions
from lucidserve.bundle.card import ModelCard
from lucidserve.bundle.features import infer_features
from lucidserve.bundle.reference import (
    EPSILON,
    bin_numeric,
    build_reference,
    categorical_bins,
    numeric_bins,
)
from lucidserve.bundle.schema import build_schemas
from lucidserve.bundle.store import read_card
from tests.support.frame_models import PackagedModel, churn_frame_card
from tests.support.linters import run_checkov
from tests.support.locust_runs import (
    failing_service,
    gauge_by_feature,
    request_counts,
    run_locust,
)
from tests.support.manifests import kustomize_command
from tests.support.processes import BIN, REPO, Service, start_process, start_service, wait_until

ROWS = 4000
K8S_LOADTEST = REPO / "deploy" / "k8s" / "loadtest"
VARIANTS = ("", "distributed")


@pytest.fixture(scope="module")
def iris_card(iris_bundle: Path) -> dict[str, Any]:
    return json.loads((iris_bundle / "card.json").read_text())


@pytest.fixture(scope="module")
def reviews_card() -> dict[str, Any]:
    """A card with a number, a category and a text feature, built by lucidserve's own code."""
    rng = Random(7)
    colours = ["red"] * 50 + ["green"] * 30 + ["blue"] * 15 + ["violet"] * 5
    words = ["good", "bad", "parcel", "late", "price", "refund", "fast", "broken", "love"]
    columns = {
        "price": [round(rng.uniform(1, 100), 2) for _ in range(300)],
        "colour": [rng.choice(colours) for _ in range(300)],
        "text": [
            " ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(300)
        ],
    }
    specs, arrays = infer_features(pd.DataFrame(columns), max_text_length=2000, keep_dtypes=False)
    assert [s.type for s in specs] == ["number", "category", "text"]
    predictions = np.array([rng.choice(["happy", "unhappy"]) for _ in range(300)])
    reference = build_reference(specs, arrays, predictions, ["happy", "unhappy"])
    return {
        "name": "reviews",
        "version": "0.3.0",
        "task": "classification",
        "classes": ["happy", "unhappy"],
        "features": [s.model_dump(mode="json") for s in specs],
        "drift": reference.model_dump(mode="json"),
    }


def test_iris_payloads_are_valid_requests_for_the_service(
    iris_card: dict[str, Any], iris_bundle: Path
) -> None:
    model = PayloadModel.from_card(iris_card)
    samples = model.samples(Random(1), 200)
    features = ("sepal_length", "sepal_width", "petal_length", "petal_width")
    assert model.feature_names == features
    assert model.classes == ("setosa", "versicolor", "virginica")
    assert model.source == "the drift reference"
    _assert_accepted_by_service_schema(read_card(iris_bundle), samples)


def test_iris_payloads_follow_the_reference_distribution(iris_card: dict[str, Any]) -> None:
    model = PayloadModel.from_card(iris_card)
    samples = model.samples(Random(2), ROWS)
    for name, reference in iris_card["drift"]["features"].items():
        assert _psi(reference, [s[name] for s in samples]) < 0.02, name


def test_same_seed_same_payloads_and_other_seed_other_payloads(iris_card: dict[str, Any]) -> None:
    model = PayloadModel.from_card(iris_card)
    assert model.samples(Random("s/1"), 20) == model.samples(Random("s/1"), 20)
    assert model.samples(Random("s/1"), 20) != model.samples(Random("s/2"), 20)


def test_drifted_population_moves_only_the_chosen_feature(iris_card: dict[str, Any]) -> None:
    model = PayloadModel.from_card(iris_card).drifted("petal_width", 0.5)
    samples = model.samples(Random(3), ROWS)
    for name, reference in iris_card["drift"]["features"].items():
        psi = _psi(reference, [s[name] for s in samples])
        assert (psi > 0.25) if name == "petal_width" else (psi < 0.02), (name, psi)


def test_category_and_text_payloads_follow_the_reference(reviews_card: dict[str, Any]) -> None:
    model = PayloadModel.from_card(reviews_card)
    samples = model.samples(Random(4), ROWS)
    assert {s["colour"] for s in samples} == {"red", "green", "blue", "violet"}
    assert all(isinstance(s["text"], str) and 1 <= len(s["text"]) <= 2000 for s in samples)
    assert all(s["text"] == s["text"].strip() for s in samples)
    for name, reference in reviews_card["drift"]["features"].items():
        assert _psi(reference, [s[name] for s in samples]) < 0.02, name
    card = ModelCard.model_validate(
        {
            **reviews_card,
            "created": "2026-01-01T00:00:00+00:00",
            "sklearn_version": "1.5",
            "estimator_file": "model.skops",
            "estimator_format": "skops",
            "estimator_sha256": "0" * 64,
        }
    )
    _assert_accepted_by_service_schema(card, samples[:200])


def test_category_and_text_features_can_drift(reviews_card: dict[str, Any]) -> None:
    base = PayloadModel.from_card(reviews_card)
    references = reviews_card["drift"]["features"]
    for feature in ("colour", "text"):
        samples = base.drifted(feature, 0.5).samples(Random(5), ROWS)
        assert _psi(references[feature], [s[feature] for s in samples]) > 0.25, feature


def test_card_without_drift_reference_uses_ranges_categories_and_lengths() -> None:
    """The fallback for a card without a reference (the scenarios log a warning then)."""
    card = {
        "name": "bare",
        "version": "1",
        "classes": ["a", "b"],
        "features": [
            {"name": "x", "type": "number", "range": {"min": -2.0, "max": 3.0}},
            {"name": "c", "type": "category", "categories": ["u", "v"]},
            {"name": "t", "type": "text", "max_length": 50},
        ],
    }
    model = PayloadModel.from_card(card)
    assert model.source == "the features' ranges, categories and lengths"
    samples = model.samples(Random(6), 500)
    assert all(-2.0 <= s["x"] <= 3.0 for s in samples)  # type: ignore[operator]
    assert {s["c"] for s in samples} == {"u", "v"}
    assert all(1 <= len(str(s["t"])) <= 50 for s in samples)


@pytest.fixture(scope="module")
def frame_card() -> dict[str, Any]:
    """A DataFrame model's card (as GET /v1/model serves it): integer, float, category, boolean
    and text columns with blanks in the reference, each bin built by lucidserve's own code."""
    rng = Random(9)
    n = 2000

    def blanks(values: list[Any], rate: float, blank: Any) -> list[Any]:
        return [blank if rng.random() < rate else v for v in values]

    columns: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "age": (
            {"type": "number", "dtype": "int64", "nullable": True},
            numeric_bins(
                np.array(blanks([rng.randint(18, 90) for _ in range(n)], 0.1, np.nan), float),
                kind="numeric",
            ),
        ),
        "income": (
            {"type": "number", "dtype": "float64", "nullable": True},
            numeric_bins(
                np.array(blanks([rng.lognormvariate(10, 1) for _ in range(n)], 0.2, np.nan)),
                kind="numeric",
            ),
        ),
        "tenure": (
            {"type": "number", "dtype": "int64", "nullable": False},
            numeric_bins(np.array([rng.randint(0, 72) for _ in range(n)], float), kind="numeric"),
        ),
        # Blanks in the reference, yet declared not nullable: never sent as null.
        "score": (
            {"type": "number", "dtype": "float64"},
            numeric_bins(
                np.array(blanks([rng.random() for _ in range(n)], 0.04, np.nan)), kind="numeric"
            ),
        ),
        "plan": (
            {
                "type": "category",
                "dtype": "object",
                "nullable": True,
                "categories": ["basic", "plus", "pro"],
            },
            categorical_bins(
                np.array(
                    blanks(
                        [rng.choice(["basic", "basic", "plus", "pro"]) for _ in range(n)],
                        0.05,
                        None,
                    ),
                    dtype=object,
                )
            ),
        ),
        "active": (
            {"type": "boolean", "dtype": "bool", "nullable": True},
            categorical_bins(
                np.array(
                    blanks([str(rng.random() < 0.7) for _ in range(n)], 0.15, None), dtype=object
                ),
                categories=["False", "True"],
            ),
        ),
        "notes": (
            {"type": "text", "dtype": "object", "nullable": True, "max_length": 500},
            numeric_bins(
                np.array(blanks([float(rng.randint(1, 120)) for _ in range(n)], 0.3, np.nan)),
                kind="text_length",
            ),
        ),
    }
    return {
        "name": "churn",
        "version": "2.0.0",
        "task": "classification",
        "input_format": "frame",
        "classes": ["False", "True"],
        "features": [{"name": name, **spec} for name, (spec, _) in columns.items()],
        "drift": {"features": {name: bins for name, (_, bins) in columns.items()}},
    }


def test_nullable_features_send_null_at_the_reference_missing_rate(
    frame_card: dict[str, Any],
) -> None:
    samples = PayloadModel.from_card(frame_card).samples(Random(10), ROWS)
    references = frame_card["drift"]["features"]
    rates = {"age": 0.1, "income": 0.2, "plan": 0.05, "active": 0.15, "notes": 0.3}
    for name, rate in rates.items():
        sent = sum(s[name] is None for s in samples) / ROWS
        missing = references[name]["proportions"][-1]
        assert abs(missing - rate) < 0.03, (name, missing)  # the reference has its blanks
        assert abs(sent - missing) < 0.02, (name, sent, missing)
    for name in ("tenure", "score"):
        assert all(s[name] is not None for s in samples), name
    # With the nulls, reference-like traffic matches the reference in every bin, missing included.
    for name in rates:
        assert _psi(references[name], [s[name] for s in samples]) < 0.02, name


def test_integer_and_boolean_dtypes_are_sent_as_json_integers_and_booleans(
    frame_card: dict[str, Any],
) -> None:
    samples = PayloadModel.from_card(frame_card).samples(Random(11), 500)
    sent = json.loads(json.dumps({"samples": samples}))["samples"]
    present = {name: [s[name] for s in sent if s[name] is not None] for name in sent[0]}
    assert all(type(v) is int for v in present["age"] + present["tenure"])
    assert min(present["age"]) >= 18  # the reference's observed range
    assert max(present["age"]) <= 90
    assert all(type(v) is float for v in present["income"] + present["score"])
    assert set(present["active"]) == {True, False}
    assert all(type(v) is str for v in present["plan"] + present["notes"])


def test_nullable_feature_drifts_and_keeps_its_nulls(frame_card: dict[str, Any]) -> None:
    model = PayloadModel.from_card(frame_card).drifted("age", 0.5)
    samples = model.samples(Random(12), ROWS)
    assert _psi(frame_card["drift"]["features"]["age"], [s["age"] for s in samples]) > 0.25
    assert abs(sum(s["age"] is None for s in samples) / ROWS - 0.1) < 0.03
    assert all(type(s["age"]) is int for s in samples if s["age"] is not None)


def test_frame_model_payloads_are_valid_requests_with_nulls_where_nullable() -> None:
    """A card made by lucidserve's own packaging code from a DataFrame with blanks, as
    GET /v1/model serves it: the service's request schema (strict integers and booleans, null
    only where nullable) takes every payload, and the nullable features get their nulls."""
    rng = np.random.default_rng(14)
    rows = 1000
    frame = pd.DataFrame(
        {
            "monthly": rng.normal(70, 20, rows),
            "tenure": rng.integers(0, 72, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows).astype(object),
            "paperless": rng.choice([True, False], rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "monthly"] = np.nan
    frame.loc[rng.random(rows) < 0.2, "plan"] = np.nan
    card = churn_frame_card(frame)
    assert {f.name for f in card.features if f.nullable} == {"monthly", "plan"}
    served = json.loads(json.dumps(card.public()))
    samples = PayloadModel.from_card(served).samples(Random(15), ROWS)
    schemas = build_schemas(card, max_batch_rows=ROWS, max_text_length=100)
    validated = schemas.predict_request.validate_json(json.dumps({"samples": samples}))
    assert len(validated["samples"]) == ROWS
    assert all(type(s["tenure"]) is int and type(s["paperless"]) is bool for s in samples)
    for name, blanks in (("monthly", 0.1), ("plan", 0.2)):
        sent = sum(s[name] is None for s in samples) / ROWS
        assert abs(sent - blanks) < 0.03, (name, sent)
    assert all(s["tenure"] is not None and s["paperless"] is not None for s in samples)
    for name, reference in served["drift"]["features"].items():
        assert _psi(reference, [s[name] for s in samples]) < 0.02, name


def test_card_without_reference_draws_whole_numbers_and_booleans_and_no_nulls() -> None:
    card = {
        "name": "bare",
        "version": "1",
        "task": "regression",
        "classes": None,
        "features": [
            {"name": "n", "type": "number", "dtype": "int64", "nullable": True,
             "range": {"min": 1.0, "max": 3.0}},
            {"name": "b", "type": "boolean", "dtype": "bool"},
        ],
    }  # fmt: skip
    samples = PayloadModel.from_card(card).samples(Random(13), 300)
    assert {s["n"] for s in samples} == {1, 2, 3}
    assert all(type(s["n"]) is int for s in samples)
    assert {s["b"] for s in samples} == {True, False}


def test_batch_sizes_are_mostly_small_with_a_bounded_tail() -> None:
    rng = Random(8)
    sizes = [draw_batch_size(rng, median=8, maximum=100) for _ in range(5000)]
    assert min(sizes) >= 2
    assert max(sizes) <= 100
    assert 6 <= sorted(sizes)[len(sizes) // 2] <= 10
    assert max(sizes) > 40


def _iris_model() -> PayloadModel:
    return PayloadModel("iris", "1.0.0", ("setosa", "versicolor", "virginica"), ())


def _prediction(label: str = "setosa", probabilities: Any = None) -> dict[str, Any]:
    probabilities = probabilities or {"setosa": 0.7, "versicolor": 0.2, "virginica": 0.1}
    return {"label": label, "probability": probabilities.get(label), "probabilities": probabilities}


def _answer(*predictions: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "predictions": list(predictions),
        "model_name": "iris",
        "model_version": "1.0.0",
        "request_id": "r1",
    }
    return {**body, **overrides}


def test_a_correct_prediction_answer_passes() -> None:
    assert check_predictions(200, _answer(_prediction(), _prediction()), _iris_model(), 2) is None


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (503, _answer(_prediction()), "status 503"),
        (200, _answer(), "expected 1 predictions"),
        (200, _answer(_prediction(label="rose")), "not one of the model's classes"),
        (200, _answer(_prediction(probabilities={"setosa": 1.0})), "do not cover exactly"),
        (
            200,
            _answer(_prediction(probabilities={"setosa": 0.7, "versicolor": 0.7, "virginica": 0})),
            "sum to",
        ),
        (
            200,
            _answer(_prediction(probabilities={"setosa": 1.2, "versicolor": -0.2, "virginica": 0})),
            "outside [0, 1]",
        ),
        (200, _answer(_prediction(), model_version="2.0.0"), "expected iris:1.0.0"),
        (200, _answer(_prediction(), request_id=""), "no request_id"),
    ],
)
def test_a_wrong_prediction_answer_is_a_failure(status: int, body: Any, problem: str) -> None:
    found = check_predictions(status, body, _iris_model(), 1)
    assert found is not None
    assert problem in found


def _regressor() -> PayloadModel:
    return PayloadModel("diabetes", "1.0.0", (), (), task="regression")


def test_a_regressor_answer_with_values_passes() -> None:
    body = _answer({"value": 151.2}, {"value": -3})
    body["model_name"] = "diabetes"
    assert check_predictions(200, body, _regressor(), 2) is None


@pytest.mark.parametrize(
    ("prediction", "problem"),
    [
        ({"value": "151.2"}, "not a finite number"),
        ({"value": float("nan")}, "not a finite number"),
        ({}, "not a finite number"),
        ({"label": "151.2", "value": 151.2}, "carries a label"),
        (_prediction(), "carries a label"),
    ],
)
def test_a_wrong_regressor_answer_is_a_failure(prediction: dict[str, Any], problem: str) -> None:
    body = _answer(prediction, model_name="diabetes")
    assert problem in str(check_predictions(200, body, _regressor(), 1))


def test_a_classifier_answer_is_still_checked_as_a_classifier() -> None:
    found = check_predictions(200, _answer({"value": 1.0}), _iris_model(), 1)
    assert "not one of the model's classes" in str(found)


def test_the_task_comes_from_the_card() -> None:
    card: dict[str, Any] = {"name": "d", "version": "1", "features": [], "task": "regression"}
    assert PayloadModel.from_card(card).is_regressor
    assert not PayloadModel.from_card(card).has_label_route
    classifier = PayloadModel.from_card({**card, "task": "classification", "classes": ["x", "y"]})
    assert not classifier.is_regressor
    assert classifier.has_label_route
    assert not PayloadModel.from_card(
        {**card, "classes": ["x"], "probabilities": False}
    ).probabilities


def test_a_classifier_without_probabilities_answers_labels_only() -> None:
    model = PayloadModel("svm", "1", ("a", "b"), (), probabilities=False)
    labels_only = {"label": "a", "probability": None, "probabilities": None}
    assert (
        check_predictions(200, _answer(labels_only, model_name="svm", model_version="1"), model, 1)
        is None
    )
    with_shares = {"label": "a", "probability": 0.5, "probabilities": {"a": 0.5, "b": 0.5}}
    found = check_predictions(
        200, _answer(with_shares, model_name="svm", model_version="1"), model, 1
    )
    assert "says has none" in str(found)
    assert not model.has_label_route


def test_a_model_without_label_route_answers_any_label_with_404() -> None:
    cases = invalid_requests({"a": 1.0}, label_route=False)
    (case,) = [c for c in cases if c.case == "unknown label"]
    assert case.expected == {404}
    (case,) = [c for c in invalid_requests({"a": 1.0}) if c.case == "unknown label"]
    assert case.expected == {422}


def test_label_answers_are_checked() -> None:
    body = {
        "label": "setosa",
        "probabilities": [0.5, 1.0],
        "model_name": "iris",
        "model_version": "1.0.0",
        "request_id": "r",
    }
    model = _iris_model()
    assert check_label_probabilities(200, body, model, "setosa", 2) is None
    assert "answer is about" in str(check_label_probabilities(200, body, model, "virginica", 2))
    broken = {**body, "probabilities": [0.5, 1.5]}
    assert "outside [0, 1]" in str(check_label_probabilities(200, broken, model, "setosa", 2))


def test_expected_json_errors_pass_and_anything_else_fails() -> None:
    error = {"error": {"type": "validation_error", "message": "bad"}, "request_id": "r"}
    assert check_error(422, error, {422}) is None
    assert "expected status" in str(check_error(500, error, {422}))
    assert "error.message" in str(
        check_error(422, {"error": {"type": "x"}, "request_id": "r"}, {422})
    )
    assert "request_id" in str(check_error(422, {"error": error["error"]}, {422}))


def test_invalid_requests_cover_the_documented_4xx_answers() -> None:
    cases = invalid_requests({"a": 1.0, "b": "x"})
    assert {case.case for case in cases} >= {"missing feature", "wrong type", "unknown label"}
    assert set().union(*(case.expected for case in cases)) >= {404, 415, 422}
    missing = next(case for case in cases if case.case == "missing feature")
    assert json.loads(missing.body) == {"samples": [{"b": "x"}]}


def test_steady_shape_holds_the_peak_until_the_duration_ends() -> None:
    assert plan("steady", 0, peak=10, spawn_rate=2, duration=30) == (10, 2)
    assert plan("steady", 29.9, peak=10, spawn_rate=2, duration=30) == (10, 2)
    assert plan("steady", 30, peak=10, spawn_rate=2, duration=30) is None


def test_step_shape_climbs_in_equal_steps_to_the_peak() -> None:
    users = [plan("step", t, peak=12, spawn_rate=5, duration=40, steps=4) for t in (0, 10, 25, 39)]
    assert [u[0] for u in users if u] == [3, 6, 9, 12]
    assert plan("step", 40, peak=12, spawn_rate=5, duration=40, steps=4) is None


def test_spike_shape_jumps_to_the_peak_in_the_middle_and_back() -> None:
    at = [plan("spike", t, peak=20, spawn_rate=2, duration=100) for t in (10, 50, 90)]
    assert at == [(4, 20.0), (20, 20.0), (4, 20.0)]
    assert plan("spike", 100, peak=20, spawn_rate=2, duration=100) is None


class _Total:
    def __init__(self, requests: int, fail_ratio: float, p95: float, p99: float) -> None:
        self.num_requests, self.fail_ratio = requests, fail_ratio
        self._percentiles = {0.95: p95, 0.99: p99}

    def get_response_time_percentile(self, percent: float) -> float:
        return self._percentiles[percent]


def test_limits_pass_a_run_within_them_and_name_every_breach() -> None:
    limits = Limits(max_fail_ratio=0.01, max_p95_ms=100, max_p99_ms=200)
    assert breaches(_Total(100, 0.005, 90, 150), limits) == []
    found = breaches(_Total(100, 0.5, 120, 250), limits)
    assert [f.split()[0] for f in found] == ["failure", "p95", "p99"]
    assert breaches(_Total(0, 0, 0, 0), limits) == ["no request was made"]
    assert breaches(_Total(10, 0, 5000, 5000), Limits(0.01, 0, 0)) == []


def test_scenario_configmap_ships_every_module_the_locustfile_imports() -> None:
    kustomization = yaml.safe_load((K8S_LOADTEST / "common" / "kustomization.yaml").read_text())
    generator = next(
        g
        for g in kustomization["configMapGenerator"]
        if g["name"] == "lucidserve-loadtest-scenarios"
    )
    shipped = {Path(f).name for f in generator["files"]}
    assert all((K8S_LOADTEST / "common" / f).resolve().is_file() for f in generator["files"])
    assert _imported_modules(REPO / "loadtest" / "locustfile.py") | {"__init__.py"} <= shipped


@pytest.fixture(scope="module")
def rendered_loadtest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both load-test kustomizations rendered, one file each, as a cluster would receive them."""
    command = kustomize_command()
    if command is None:
        pytest.skip("neither kubectl nor kustomize is installed (kubectl ships with this machine)")
    out = tmp_path_factory.mktemp("loadtest-manifests")
    for variant in VARIANTS:
        rendered = subprocess.run(
            [*command, "--load-restrictor", "LoadRestrictionsNone", str(K8S_LOADTEST / variant)],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        (out / f"{variant or 'single'}.yaml").write_text(rendered)
    return out


@pytest.mark.parametrize("variant", VARIANTS)
def test_loadtest_manifests_render_to_valid_kubernetes_objects(
    rendered_loadtest: Path, variant: str
) -> None:
    text = (rendered_loadtest / f"{variant or 'single'}.yaml").read_text()
    objects = [o for o in yaml.safe_load_all(text) if o]
    for obj in objects:
        kubernetes_validate.validate(obj, "1.30.0", strict=True)
    config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    jobs = [o for o in objects if o["kind"] == "Job"]
    assert jobs
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        assert job["metadata"]["namespace"] == "lucidserve"
        assert pod["securityContext"]["runAsNonRoot"] is True
        container = pod["containers"][0]
        assert container["image"] == "docker.io/locustio/locust:2.47.0"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        referenced = {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
        referenced |= {e["configMapRef"]["name"] for e in container["envFrom"]}
        assert referenced <= config_maps


@pytest.mark.slow
def test_checkov_passes_the_loadtest_manifests(rendered_loadtest: Path) -> None:
    result = run_checkov("kubernetes", rendered_loadtest)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout


@pytest.mark.slow
def test_headless_run_passes_and_both_sides_count_the_same_requests(
    service: Service, tmp_path: Path
) -> None:
    before = request_counts(service)
    out = tmp_path / "reports"
    argv = [
        str(BIN / "python"), "-m", "loadtest.run", "--url", service.url, "--out", str(out),
        "--users", "10", "--spawn-rate", "10", "--run-time", "12s",
    ]  # fmt: skip
    runner = start_process(
        argv,
        tmp_path / "run.log",
        cwd=REPO,
    )
    code = runner.proc.wait(timeout=90)
    after = request_counts(service)

    assert code == 0, runner.output()[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    assert sum(e["num_failures"] for e in stats) == 0
    locust_total = sum(e["num_requests"] for e in stats)
    served = {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if after[key] != before.get(key, 0.0)
    }
    assert locust_total > 50
    assert sum(served.values()) == locust_total, served
    assert (out / "report.html").is_file()
    assert (out / "locust_stats.csv").is_file()
    names = {e["name"] for e in stats}
    assert {"/v1/model", "/v1/predict [1 row]", "/v1/predict [batch]"} <= names


@pytest.mark.slow
def test_run_against_a_failing_service_exits_non_zero(
    iris_card: dict[str, Any], tmp_path: Path
) -> None:
    public = {k: v for k, v in iris_card.items() if k != "drift"}
    with failing_service(public, status=503) as url:
        run = run_locust(url, tmp_path, users=2, run_time=3)
    assert run.exit_code != 0, run.output[-3000:]
    assert run.requests > 0
    assert run.failures == run.requests - run.requests_named("/v1/model")
    assert "failure ratio" in run.output


@pytest.mark.slow
def test_drifted_population_raises_only_its_feature_psi(iris_bundle: Path, tmp_path: Path) -> None:
    service = start_service(iris_bundle, tmp_path / "service.log")
    try:
        card = service.client.get("/v1/model").json()
        assert (card.get("drift") or {}).get("features"), (
            "GET /v1/model must carry the drift reference (drift.features) for the traffic to "
            "follow the reference distribution"
        )
        run = run_locust(
            service.url,
            tmp_path / "locust",
            users=8,
            run_time=8,
            args=[
                "--drift-feature",
                "petal_length",
                "--batch-median-rows",
                "40",
                "--wait-max",
                "0.1",
                # This run is about drift: latency on a shared machine is not its subject.
                "--max-p95-ms",
                "0",
                "--max-p99-ms",
                "0",
            ],
            user_classes=["DriftedPopulationUser"],
        )
        assert run.exit_code == 0, run.output[-3000:]

        def settled() -> dict[str, float] | None:
            psi = gauge_by_feature(service, "model_drift_psi")
            assert psi, "the service exposes no model_drift_psi series"
            return psi if psi.get("petal_length", 0.0) > 0.25 else None

        psi = wait_until(settled, timeout=30, interval=0.5, what="model_drift_psi for petal_length")
    finally:
        service.stop()
    others = {k: v for k, v in psi.items() if k not in {"petal_length", "__prediction__"}}
    assert set(others) == {"sepal_length", "sepal_width", "petal_width"}
    assert all(v < 0.1 for v in others.values()), psi


@pytest.mark.slow
def test_headless_run_against_a_regressor_passes_its_checks(
    diabetes_model: PackagedModel, tmp_path: Path
) -> None:
    """Every scenario against a served regressor: {"value"} answers pass the checks, the label
    population predicts instead, and an unknown label is the expected 404."""
    service = start_service(diabetes_model.bundle, tmp_path / "service.log")
    try:
        run = run_locust(service.url, tmp_path / "locust", users=6, run_time=5)
    finally:
        service.stop()
    assert run.exit_code == 0, run.output[-3000:]
    assert run.failures == 0, run.output[-3000:]
    assert run.requests_named("/v1/predict [1 row]") > 0
    assert run.requests_named("/v1/predict [few rows]") > 0
    assert run.requests_named("/v1/predict/{label}") == 0


def _imported_modules(path: Path) -> set[str]:
    """File names of the loadtest modules `path` imports, transitively."""
    found: set[str] = set()
    for match in re.finditer(r"^from loadtest\.(\w+) import", path.read_text(), re.MULTILINE):
        name = f"{match.group(1)}.py"
        if name not in found:
            found |= {name} | _imported_modules(path.parent / name)
    return found


def _psi(reference: dict[str, Any], values: list[Any]) -> float:
    """PSI of `values` against a drift reference, binned exactly as the reference was."""
    expected = np.asarray(reference["proportions"], dtype=np.float64)
    if reference["kind"] == "categorical":
        position = {c: i for i, c in enumerate(reference["categories"])}
        missing = len(position) + 1
        index = np.array(
            [missing if v is None else position.get(str(v), missing - 1) for v in values]
        )
    else:
        numbers = np.array(
            [
                np.nan if v is None else float(len(v)) if isinstance(v, str) else float(v)
                for v in values
            ],
            dtype=np.float64,
        )
        index = bin_numeric(numbers, np.asarray(reference["edges"]))
    actual = np.bincount(index, minlength=expected.size) / len(values)
    actual, expected = np.maximum(actual, EPSILON), np.maximum(expected, EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _assert_accepted_by_service_schema(card: ModelCard, samples: list[Sample]) -> None:
    schemas = build_schemas(card, max_batch_rows=len(samples), max_text_length=10_000)
    validated = schemas.predict_request.validate_json(json.dumps({"samples": samples}))
    assert len(validated["samples"]) == len(samples)
    assert math.isfinite(sum(float(s[card.features[0].name]) for s in samples))
