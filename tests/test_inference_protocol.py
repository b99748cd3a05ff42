"""The Open Inference Protocol (KServe V2 REST) beside /v1, against a real `lucidserve serve`:
tritonclient.http (binary tensors, its default, and JSON), the same observability as /v1, and
every bad request answered with the protocol's {"error": ...} and a 4xx."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import REPO, Service, start_service, wait_until
from tests.test_observability import canonical_hash, log_records

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]
ROWS = [
    [5.1, 3.5, 1.4, 0.2],
    [7.7, 3.0, 6.1, 2.3],
    [5.9, 3.0, 4.2, 1.5],
    [6.3, 2.8, 5.1, 1.5],
]
INFER = "/v2/models/iris/infer"


@pytest.fixture(scope="module")
def triton_client(service: Service) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(service.url.removeprefix("http://"))
    yield client
    client.close()


def v1_answers(service: Service, rows: list[list[float]]) -> tuple[list[str], np.ndarray]:
    samples = [dict(zip(FEATURES, row, strict=True)) for row in rows]
    response = service.client.post("/v1/predict", json={"samples": samples})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    labels = [p["label"] for p in predictions]
    probabilities = np.array([[p["probabilities"][c] for c in CLASSES] for p in predictions])
    return labels, probabilities


def texts(labels: np.ndarray) -> list[str]:
    """BYTES elements as text (tritonclient gives bytes from binary data, str from JSON)."""
    return [x.decode() if isinstance(x, bytes) else x for x in labels.tolist()]


def test_tritonclient_sees_a_live_ready_server_and_the_models_metadata(
    triton_client: triton.InferenceServerClient,
) -> None:
    assert triton_client.is_server_live()
    assert triton_client.is_server_ready()
    assert triton_client.is_model_ready("iris")
    assert triton_client.is_model_ready("iris", "1.0.0")
    assert not triton_client.is_model_ready("iris", "2.0.0")
    assert "binary_tensor_data" in triton_client.get_server_metadata()["extensions"]
    metadata = triton_client.get_model_metadata("iris")
    assert metadata["name"] == "iris"
    assert metadata["versions"] == ["1.0.0"]
    assert metadata["inputs"] == [
        {"name": "input", "datatype": "FP64", "shape": [-1, 4]},
        *({"name": name, "datatype": "FP64", "shape": [-1]} for name in FEATURES),
    ]
    assert metadata["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]},
    ]
    assert metadata["parameters"]["classes"] == CLASSES
    assert triton_client.get_model_metadata("iris", "1.0.0") == metadata


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_tritonclient_matrix_gives_v1s_labels_and_probabilities(
    service: Service, triton_client: triton.InferenceServerClient, binary: bool, datatype: str
) -> None:
    matrix = np.array(ROWS, dtype=np.float64 if datatype == "FP64" else np.float32)
    tensor = triton.InferInput("input", list(matrix.shape), datatype)
    tensor.set_data_from_numpy(matrix, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput(n, binary_data=binary) for n in ("label", "probabilities")
    ]
    result = triton_client.infer("iris", [tensor], outputs=outputs, model_version="1.0.0")
    labels, probabilities = v1_answers(service, matrix.astype(np.float64).tolist())
    assert texts(result.as_numpy("label")) == labels
    np.testing.assert_array_equal(result.as_numpy("probabilities"), probabilities)


def test_tritonclient_defaults_one_tensor_per_feature(
    service: Service, triton_client: triton.InferenceServerClient
) -> None:
    columns = np.array(ROWS).T
    inputs = []
    for name, column in zip(FEATURES, columns, strict=True):
        tensor = triton.InferInput(name, [len(column)], "FP64")
        tensor.set_data_from_numpy(column)  # binary by default
        inputs.append(tensor)
    result = triton_client.infer("iris", inputs)  # every output, binary by default
    labels, probabilities = v1_answers(service, ROWS)
    assert texts(result.as_numpy("label")) == labels
    np.testing.assert_array_equal(result.as_numpy("probabilities"), probabilities)


def test_outputs_select_among_label_and_probabilities(service: Service) -> None:
    body = {
        "id": "r1",
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": ROWS[1]}],
        "outputs": [{"name": "label"}],
    }
    response = service.client.post(INFER, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "r1"
    assert answer["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [1], "data": ["virginica"]}
    ]


def metric_value(service: Service, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(service.metrics()):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


def test_v2_and_v1_share_input_hash_metrics_and_drift(iris_bundle: Path, tmp_path: Path) -> None:
    svc = start_service(iris_bundle, tmp_path / "service.log")
    try:
        sample = dict(zip(FEATURES, ROWS[0], strict=True))
        v1 = svc.client.post("/v1/predict", json={"samples": [sample]})
        tensor = {"name": "input", "datatype": "FP64", "shape": [1, 4], "data": ROWS[0]}
        v2 = svc.client.post(INFER, json={"inputs": [tensor]})
        assert v1.status_code == v2.status_code == 200
        ids = [v1.headers["x-request-id"], v2.headers["x-request-id"]]

        def hashes() -> list[str] | None:
            by_id = {
                r["request_id"]: r["input_hash"]
                for r in log_records(svc)
                if r.get("event") == "prediction"
            }
            return [by_id[i] for i in ids] if all(i in by_id for i in ids) else None

        found = wait_until(hashes, timeout=10, what="both prediction lines")
        assert found == [canonical_hash(sample)] * 2
        for route in ("/v1/predict", "/v2/models/{model_name}/infer"):
            count = metric_value(
                svc, "http_server_request_duration_seconds_count", {"http_route": route}
            )
            assert count == 1.0, route
        assert metric_value(svc, "model_predictions_total", {"label": "setosa"}) == 2.0
        drift = {"feature": "__prediction__", "bin": "setosa"}
        assert metric_value(svc, "model_drift_observations_total", drift) == 2.0
    finally:
        svc.stop()


def assert_protocol_error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    assert words in body["error"], body["error"]


def matrix_input(**changes: object) -> dict[str, object]:
    return {"name": "input", "datatype": "FP64", "shape": [1, 4], "data": ROWS[0], **changes}


@pytest.mark.parametrize(
    ("tensor", "words"),
    [
        (matrix_input(shape=[1, 3], data=ROWS[0][:3]), "shape [N, 4]"),
        (matrix_input(shape=[2, 4]), "8"),
        (matrix_input(datatype="BYTES", data=["a", "b", "c", "d"]), "FP32 or FP64"),
        (matrix_input(datatype="FP16"), "unsupported datatype"),
        (matrix_input(datatype={}), "unsupported datatype"),
        (matrix_input(name="pixels"), "Unknown input 'pixels'"),
        (matrix_input(data=[5.1, "3.5", 1.4, 0.2]), "must be numbers"),
        (matrix_input(data=[5.1, True, 1.4, 0.2]), "must be numbers"),
        (matrix_input(data=[5.1, 1e300, 1.4, 0.2]), "input 'sepal_width'"),
        (matrix_input(shape=[0, 4], data=[]), "no rows"),
    ],
    ids=[
        "wrong-shape",
        "data-not-filling-shape",
        "wrong-datatype",
        "unknown-datatype",
        "datatype-not-a-string",
        "unknown-input",
        "string-in-fp64",
        "bool-in-fp64",
        "out-of-range",
        "no-rows",
    ],
)
def test_bad_tensors_get_the_protocols_400(
    service: Service, tensor: dict[str, object], words: str
) -> None:
    response = service.client.post(INFER, json={"inputs": [tensor]})
    assert_protocol_error(response, 400, words)


def test_per_feature_inputs_are_validated_like_v1(service: Service) -> None:
    inputs = [
        {"name": name, "datatype": "FP64", "shape": [1], "data": [value]}
        for name, value in zip(FEATURES, ROWS[0], strict=True)
    ]
    missing = service.client.post(INFER, json={"inputs": inputs[:3]})
    assert_protocol_error(missing, 400, "Missing inputs: ['petal_width']")
    text = [*inputs[:3], {"name": "petal_width", "datatype": "BYTES", "shape": [1], "data": ["x"]}]
    assert_protocol_error(
        service.client.post(INFER, json={"inputs": text}), 400, "must be a number"
    )
    ragged = [
        *inputs[:3],
        {"name": "petal_width", "datatype": "FP64", "shape": [2], "data": [1, 2]},
    ]
    assert_protocol_error(service.client.post(INFER, json={"inputs": ragged}), 400, "same number")


def binary_request(header_extra: int = 0, cut: int = 0) -> tuple[bytes, dict[str, str]]:
    payload = np.array([ROWS[0]], dtype="<f8").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP64",
                    "shape": [1, 4],
                    "parameters": {"binary_data_size": len(payload)},
                }
            ]
        }
    ).encode()
    body = header + payload
    body = body[: len(body) - cut]
    return body, {
        "Inference-Header-Content-Length": str(len(header) + header_extra),
        "Content-Type": "application/octet-stream",
    }


def test_binary_request_by_hand_is_answered(service: Service) -> None:
    body, headers = binary_request()
    response = service.client.post(INFER, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == ["setosa"]


def test_truncated_binary_body_is_a_400(service: Service) -> None:
    body, headers = binary_request(cut=3)
    response = service.client.post(INFER, content=body, headers=headers)
    assert_protocol_error(response, 400, "binary data")


def test_binary_header_larger_than_the_body_is_a_400(service: Service) -> None:
    body, headers = binary_request(header_extra=1000)
    response = service.client.post(INFER, content=body, headers=headers)
    assert_protocol_error(response, 400, "larger than the body")


def test_truncated_bytes_element_is_a_400(service: Service) -> None:
    header = json.dumps(
        {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1],
                     "parameters": {"binary_data_size": 6}}]}
    ).encode()  # fmt: skip
    body = header + struct.pack("<I", 10) + b"ab"
    headers = {"Inference-Header-Content-Length": str(len(header))}
    response = service.client.post(INFER, content=body, headers=headers)
    assert_protocol_error(response, 400, "truncated BYTES")


def test_unknown_model_version_route_and_malformed_json_use_the_protocols_shape(
    service: Service,
) -> None:
    assert_protocol_error(service.client.get("/v2/models/daisy"), 404, "Unknown model")
    assert_protocol_error(service.client.get("/v2/models/iris/versions/9"), 404, "Unknown version")
    assert_protocol_error(service.client.post("/v2/models/daisy/infer", json={}), 404, "daisy")
    malformed = service.client.post(
        INFER, content=b"{", headers={"Content-Type": "application/json"}
    )
    assert_protocol_error(malformed, 400, "not valid JSON")
    # Outside the protocol's routes (an unknown path too), the service's own envelope.
    assert set(service.client.get("/v2/nothing").json()) == {"error", "request_id"}
    assert set(service.client.get("/v1/nothing").json()) == {"error", "request_id"}


def test_limits_are_v1s(iris_bundle: Path, tmp_path: Path) -> None:
    env = {"LUCIDSERVE_MAX_BATCH_ROWS": "2", "LUCIDSERVE_MAX_BODY_BYTES": "2048"}
    svc = start_service(iris_bundle, tmp_path / "service.log", env=env)
    try:
        rows = svc.client.post(
            INFER, json={"inputs": [matrix_input(shape=[3, 4], data=ROWS[0] * 3)]}
        )
        assert_protocol_error(rows, 413, "limit of 2")
        large = svc.client.post(INFER, json={"inputs": [matrix_input(pad="x" * 4000)]})
        assert_protocol_error(large, 413, "2048 bytes")
    finally:
        svc.stop()


def uvx() -> str | None:
    found = shutil.which("uvx")
    local = REPO / ".venv-uv" / "bin" / "uvx"
    return found or (str(local) if local.exists() else None)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_kserve_sdk_rest_client_gives_v1s_answers(service: Service, binary: bool) -> None:
    """The kserve SDK pins clash with the lock file: it runs in its own environment (uvx)."""
    runner = uvx()
    if runner is None:
        pytest.skip("uvx is not installed")
    script = REPO / "tests" / "support" / "kserve_client.py"
    result = subprocess.run(
        [runner, "--python", "3.11", "--from", "kserve", "python", str(script), service.url,
         json.dumps(ROWS), "binary" if binary else "json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["live"] is True
    assert seen["ready"] is True
    assert seen["model_ready"] is True
    labels, probabilities = v1_answers(service, ROWS)
    assert seen["labels"] == labels
    np.testing.assert_array_equal(np.array(seen["probabilities"]), probabilities)
