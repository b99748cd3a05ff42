"""`lucidserve package`: a team's own models served without code changes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import package_mixed_model, package_text_model
from tests.support.processes import BIN, Service, start_service


@pytest.fixture(scope="module")
def text_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("text")
    svc = start_service(package_text_model(tmp), tmp / "service.log")
    yield svc
    svc.stop()


def test_text_model_predicts_newsgroups(text_service: Service) -> None:
    samples = [
        {"text": "the goalie stopped the puck and the team scored on the power play"},
        {"text": "the rocket carried the satellite into orbit around the moon"},
    ]
    response = text_service.client.post("/v1/predict", json={"samples": samples})
    assert response.status_code == 200, response.text
    labels = [p["label"] for p in response.json()["predictions"]]
    assert labels == ["rec.sport.hockey", "sci.space"]


def test_label_with_dots_is_a_valid_path_label(text_service: Service) -> None:
    response = text_service.client.post(
        "/v1/predict/rec.sport.hockey", json={"samples": [{"text": "slapshot on the ice"}]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["label"] == "rec.sport.hockey"
    assert response.json()["probabilities"][0] > 0.34


def test_text_card_has_a_text_feature_and_max_length(text_service: Service) -> None:
    card = text_service.client.get("/v1/model").json()
    assert [(f["name"], f["type"]) for f in card["features"]] == [("text", "text")]
    assert card["input_format"] == "text"
    too_long = {"samples": [{"text": "x" * 20_000}]}
    assert text_service.client.post("/v1/predict", json=too_long).status_code == 422


def test_mixed_model_infers_types_and_rejects_unknown_categories(tmp_path: Path) -> None:
    bundle = package_mixed_model(tmp_path)
    card = json.loads((bundle / "card.json").read_text())
    types = {f["name"]: f["type"] for f in card["features"]}
    assert types == {"size": "number", "colour": "category"}
    colour = next(f for f in card["features"] if f["name"] == "colour")
    assert colour["categories"] == ["blue", "green", "red"]
    svc = start_service(bundle, tmp_path / "service.log")
    try:
        ok = svc.client.post("/v1/predict", json={"samples": [{"size": 9.0, "colour": "blue"}]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"][0]["label"] == "big"
        bad = svc.client.post("/v1/predict", json={"samples": [{"size": 1.0, "colour": "pink"}]})
        assert bad.status_code == 422
        assert "'blue', 'green' or 'red'" in bad.text
    finally:
        svc.stop()


def test_pickle_input_prints_a_trust_warning(tmp_path: Path) -> None:
    import pickle

    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], ["a", "a", "b", "b"])
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(model))
    (tmp_path / "ref.csv").write_text("x\n0\n1\n2\n3\n")
    result = subprocess.run(
        [str(BIN / "lucidserve"), "package", str(tmp_path / "m.pkl"), "--reference",
         str(tmp_path / "ref.csv"), "--out", str(tmp_path / "bundle")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "only if you trust" in result.stderr
    card = json.loads((tmp_path / "bundle" / "card.json").read_text())
    assert card["estimator_format"] == "skops"
