"""GET /v1/drift: the typed summary, the disabled case, and the API key guard."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from lucidserve.api.drift import drift_router
from lucidserve.api.errors import install_error_handlers
from lucidserve.api.security import api_key_dependencies
from lucidserve.bundle.card import ModelCard
from lucidserve.bundle.train import train
from lucidserve.observability.drift import DriftMonitor
from tests.support.drift_monitors import make_monitor, send
from tests.support.iris_traffic import iris_rows


@pytest.fixture(scope="module")
def iris_card(tmp_path_factory: pytest.TempPathFactory) -> ModelCard:
    return train("iris", tmp_path_factory.mktemp("drift-api") / "iris")


class Client:
    """An in-process client of an app holding only the drift router."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await http.get(path, headers=headers)

        return asyncio.run(call())


def client(monitor: DriftMonitor | None, keys: tuple[bytes, ...] = ()) -> Client:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(drift_router(monitor, api_key_dependencies(keys)))
    return Client(app)


def test_the_summary_lists_every_feature_and_the_prediction(iris_card: ModelCard) -> None:
    monitor, _ = make_monitor(iris_card, drift_min_samples=100)
    send(monitor, iris_rows(200, seed=31))
    response = client(monitor).get("/v1/drift")
    assert response.status_code == 200
    body = response.json()
    assert set(body["features"]) == {f.name for f in iris_card.features} | {"__prediction__"}
    petal = body["features"]["petal_length"]
    assert petal["observations"] == 200
    assert petal["status"] in {"ok", "warn", "alert"}
    assert sum(b["observed"] for b in petal["bins"]) == pytest.approx(1.0)
    assert (body["window_seconds"], body["min_samples"], body["epsilon"]) == (3600, 100, 1e-4)


def test_the_openapi_document_describes_the_summary(iris_card: ModelCard) -> None:
    monitor, _ = make_monitor(iris_card)
    schema = client(monitor).get("/openapi.json").json()
    ok = schema["paths"]["/v1/drift"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/DriftSummary")
    assert "psi" in schema["components"]["schemas"]["FeatureDrift"]["properties"]


def test_with_drift_disabled_the_endpoint_says_so() -> None:
    response = client(None).get("/v1/drift")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert "LUCIDSERVE_DRIFT_ENABLED" in response.json()["error"]["message"]


def test_the_summary_needs_an_api_key_when_keys_are_configured(iris_card: ModelCard) -> None:
    monitor, _ = make_monitor(iris_card)
    secured = client(monitor, keys=(b"s3cret",))
    assert secured.get("/v1/drift").status_code == 401
    assert secured.get("/v1/drift", headers={"X-API-Key": "s3cret"}).status_code == 200
