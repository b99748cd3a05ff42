"""The HTTP API against a real `lucidserve serve` process: answers, and every error as JSON."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Service, start_service

SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = {"sepal_length": 7.7, "sepal_width": 3.0, "petal_length": 6.1, "petal_width": 2.3}


def assert_error(response: httpx.Response, status: int, error_type: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"type", "message", "details"}
    assert body["request_id"] == response.headers["x-request-id"]
    if error_type is not None:
        assert body["error"]["type"] == error_type
    return body


@pytest.fixture(scope="module")
def limited(iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service with small limits: 5 samples a request, 2 KiB bodies."""
    log = tmp_path_factory.mktemp("limited") / "service.log"
    env = {"LUCIDSERVE_MAX_BATCH_ROWS": "5", "LUCIDSERVE_MAX_BODY_BYTES": "2048"}
    svc = start_service(iris_bundle, log, env=env)
    yield svc
    svc.stop()


def test_predict_returns_label_and_every_class_probability(service: Service) -> None:
    response = service.client.post("/v1/predict", json={"samples": [SETOSA, VIRGINICA]})
    assert response.status_code == 200
    body = response.json()
    assert [p["label"] for p in body["predictions"]] == ["setosa", "virginica"]
    for prediction in body["predictions"]:
        assert set(prediction["probabilities"]) == {"setosa", "versicolor", "virginica"}
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
        assert prediction["probability"] == max(prediction["probabilities"].values())
    assert body["model_name"] == "iris"
    assert body["model_version"] == "1.0.0"
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["server-timing"].startswith("app;dur=")


def test_client_request_id_is_echoed_and_insane_ones_replaced(service: Service) -> None:
    kept = service.client.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
    assert kept.headers["x-request-id"] == "abc-123.x"
    replaced = service.client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert len(replaced.headers["x-request-id"]) == 32


def test_label_route_returns_that_labels_probability(service: Service) -> None:
    response = service.client.post("/v1/predict/virginica", json={"samples": [VIRGINICA, SETOSA]})
    assert response.status_code == 200
    body = response.json()
    assert body["label"] == "virginica"
    assert body["probabilities"][0] > 0.5 > body["probabilities"][1]


def test_unknown_label_is_422_listing_the_valid_ones(service: Service) -> None:
    body = assert_error(
        service.client.post("/v1/predict/daisy", json={"samples": [SETOSA]}), 422, "unknown_label"
    )
    assert body["error"]["details"]["valid_labels"] == ["setosa", "versicolor", "virginica"]


def test_key_order_and_number_formatting_do_not_matter(service: Service) -> None:
    reordered = (
        b'{"samples":[{"petal_width":0.20,"petal_length":1.40,'
        b'"sepal_width":3.5,"sepal_length":5.10}]}'
    )
    plain = service.client.post("/v1/predict", json={"samples": [SETOSA]}).json()
    other = service.client.post(
        "/v1/predict", content=reordered, headers={"content-type": "application/json"}
    ).json()
    assert other["predictions"] == plain["predictions"]
    integers = {**SETOSA, "sepal_length": 5, "sepal_width": 3}
    assert service.client.post("/v1/predict", json={"samples": [integers]}).status_code == 200


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"samples": [{**SETOSA, "petal_width": True}]}, ["samples", 0, "petal_width"]),
        ({"samples": [{**SETOSA, "petal_width": "0.2"}]}, ["samples", 0, "petal_width"]),
        ({"samples": [{**SETOSA, "colour": "red"}]}, ["samples", 0, "colour"]),
        (
            {"samples": [{k: v for k, v in SETOSA.items() if k != "sepal_length"}]},
            ["samples", 0, "sepal_length"],
        ),
        ({"samples": []}, ["samples"]),
        ({"rows": [SETOSA]}, ["rows"]),
    ],
    ids=["boolean", "string", "unknown-field", "missing-field", "empty-batch", "wrong-key"],
)
def test_schema_errors_are_422_with_the_field_path(
    service: Service, body: dict, location: list
) -> None:
    error = assert_error(service.client.post("/v1/predict", json=body), 422, "validation_error")
    assert location in [d["loc"] for d in error["error"]["details"]]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_rejected(service: Service, literal: str) -> None:
    raw = json.dumps({"samples": [SETOSA]}).replace("0.2", literal)
    response = service.client.post(
        "/v1/predict", content=raw, headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "validation_error")


def test_malformed_json_is_422(service: Service) -> None:
    response = service.client.post(
        "/v1/predict", content=b'{"samples": [', headers={"content-type": "application/json"}
    )
    body = assert_error(response, 422, "validation_error")
    assert "not valid JSON" in body["error"]["message"]


def test_non_json_content_type_is_415(service: Service) -> None:
    response = service.client.post(
        "/v1/predict",
        content=json.dumps({"samples": [SETOSA]}),
        headers={"content-type": "text/plain"},
    )
    assert_error(response, 415, "unsupported_media_type")


def test_unknown_route_is_json_404_and_wrong_method_json_405(service: Service) -> None:
    assert_error(service.client.get("/v2/nothing"), 404, "not_found")
    assert_error(service.client.get("/v1/predict"), 405, "method_not_allowed")


def test_batch_at_the_limit_passes_and_over_it_is_413(limited: Service) -> None:
    at_limit = limited.client.post("/v1/predict", json={"samples": [SETOSA] * 5})
    assert at_limit.status_code == 200
    assert len(at_limit.json()["predictions"]) == 5
    body = assert_error(
        limited.client.post("/v1/predict", json={"samples": [SETOSA] * 6}), 413, "too_many_samples"
    )
    assert body["error"]["details"] == {"max_batch_rows": 5}


def test_body_over_the_limit_is_413_by_content_length(limited: Service) -> None:
    big = json.dumps({"samples": [SETOSA] * 40}).encode()
    assert len(big) > 2048
    response = limited.client.post(
        "/v1/predict", content=big, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


def test_chunked_body_over_the_limit_is_413(limited: Service) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"samples": ['
        for _ in range(60):
            yield json.dumps(SETOSA).encode() + b","
        yield json.dumps(SETOSA).encode() + b"]}"

    response = limited.client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


def test_service_keeps_serving_after_every_error(limited: Service) -> None:
    raw = socket.create_connection(("127.0.0.1", limited.port), timeout=5)
    raw.sendall(b"GARBAGE / HTTP/1.1\r\n\r\n")
    raw.recv(1024)
    raw.close()
    response = limited.client.post("/v1/predict", json={"samples": [SETOSA]})
    assert response.status_code == 200


def test_model_card_is_served_with_its_aggregate_drift_reference(service: Service) -> None:
    card = service.client.get("/v1/model").json()
    assert [f["name"] for f in card["features"]] == list(SETOSA)
    assert all(f["unit"] == "cm" and f["type"] == "number" for f in card["features"])
    assert card["classes"] == ["setosa", "versicolor", "virginica"]
    assert card["drift_reference_version"] == card["drift"]["version"]
    petal = card["drift"]["features"]["petal_length"]
    assert len(petal["bins"]) == len(petal["proportions"])
    assert sum(petal["proportions"]) == pytest.approx(1.0)
    assert "trusted_types" not in card
    assert card["metrics"]["accuracy"] > 0.8


def test_openapi_documents_the_real_features_with_a_working_example(service: Service) -> None:
    spec = service.client.get("/openapi.json").json()
    sample = spec["components"]["schemas"]["Sample"]
    assert sorted(sample["required"]) == sorted(SETOSA)
    assert sample["additionalProperties"] is False
    assert "centimetres" in sample["properties"]["petal_length"]["description"]
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    example = body["example"]
    assert service.client.post("/v1/predict", json=example).status_code == 200
    assert service.client.get("/docs").status_code == 200
    assert service.client.get("/redoc").status_code == 200


def test_health_probes_and_metrics_answer(service: Service) -> None:
    assert service.client.get("/healthz").json() == {"status": "ok"}
    assert service.client.get("/readyz").json()["status"] == "ready"
    metrics = service.metrics_response()
    assert metrics.status_code == 200
    assert "http_server_request_duration_seconds_bucket" in metrics.text
    openmetrics = service.metrics_response(openmetrics=True)
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
