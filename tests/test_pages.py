"""The documentation and model pages over HTTP, against real servers: sources, keys, workers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import worker_connections
from tests.support.iris_traffic import as_samples, iris_rows
from tests.support.models import package_mixed_model, package_text_model
from tests.support.processes import Service, start_service

KEY = "page-test-key"
URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")
ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def start(bundle: Path, tmp: pytest.TempPathFactory, workers: int = 1, **env: str) -> Service:
    return start_service(bundle, tmp.mktemp("pages") / "service.log", workers=workers, env=env)


@pytest.fixture(scope="module")
def keyed_service(iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start(iris_bundle, tmp_path_factory, LUCIDSERVE_API_KEYS=KEY)
    yield service
    service.stop()


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/"])
def test_pages_load_nothing_from_another_host(service: Service, path: str) -> None:
    response = service.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert URL.findall(response.text) == []
    for asset in ASSET.findall(response.text):
        assert asset.startswith("/"), asset
        assert service.client.get(asset).status_code == 200, asset


def test_docs_assets_are_swagger_ui_and_redoc_from_the_service(service: Service) -> None:
    docs = service.client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs
    assert "/docs-assets/swagger-ui.css" in docs
    assert "/docs-assets/redoc.standalone.js" in service.client.get("/redoc").text
    script = service.client.get("/docs-assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in script.text
    assert script.headers["cache-control"] == "public, max-age=86400"
    assert service.client.get("/docs-assets/core.py").status_code == 404
    assert service.client.get("/docs-assets/..%2Fcore.py").status_code == 404
    metrics = service.metrics()
    assert 'http_route="/docs-assets/{name}"' in metrics


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/"])
def test_documentation_and_the_model_page_need_a_key_when_keys_are_set(
    keyed_service: Service, path: str
) -> None:
    assert keyed_service.client.get(path).status_code == 401
    assert keyed_service.client.get(path, headers={"X-API-Key": KEY}).status_code == 200
    bearer = {"Authorization": f"Bearer {KEY}"}
    assert keyed_service.client.get(path, headers=bearer).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/docs-assets/swagger-ui.css"])
def test_probes_and_assets_need_no_key_when_keys_are_set(keyed_service: Service, path: str) -> None:
    assert keyed_service.client.get(path).status_code == 200


def test_the_metrics_port_needs_no_key_when_keys_are_set(keyed_service: Service) -> None:
    assert keyed_service.metrics_response().status_code == 200


def test_docs_switched_off_are_gone_and_unlinked(
    iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    service = start(iris_bundle, tmp_path_factory, LUCIDSERVE_DOCS_ENABLED="false")
    try:
        statuses = {p: service.client.get(p).status_code for p in ("/openapi.json", "/docs")}
        statuses["/redoc"] = service.client.get("/redoc").status_code
        page = service.client.get("/").text
    finally:
        service.stop()
    assert statuses == {"/openapi.json": 404, "/docs": 404, "/redoc": 404}
    assert 'href="/docs"' not in page
    assert 'href="/v1/model"' in page


def test_the_model_page_may_be_cached_by_the_browser_for_five_seconds(service: Service) -> None:
    assert service.client.get("/").headers["cache-control"] == "private, max-age=5"


@pytest.mark.skipif(not worker_connections.available(), reason="needs Linux /proc")
def test_the_model_page_is_the_same_whichever_worker_answers(
    iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    service = start(iris_bundle, tmp_path_factory, workers=2, LUCIDSERVE_DRIFT_MIN_SAMPLES="100")
    workers = worker_connections.connections_to_workers(service.port, service.pid, workers=2)
    try:
        rows = as_samples(iris_rows(400, seed=5, shift={"sepal_width": 0.8}))
        for i, start_row in enumerate(range(0, len(rows), 50)):
            status, _ = workers[i % 2].request(
                "POST", "/v1/predict", {"samples": rows[start_row : start_row + 50]}
            )
            assert status == 200
        pages = [w.request("GET", "/")[1].decode() for w in workers]
    finally:
        for worker in workers:
            worker.close()
        service.stop()
    drift = [re.search(r'<section id="drift">.*?</section>', p, re.DOTALL) for p in pages]
    assert drift[0] is not None
    assert drift[1] is not None
    assert drift[0].group(0) == drift[1].group(0)
    assert 'data-feature="sepal_width" data-status="alert"' in drift[0].group(0)
    api = [re.search(r"<strong>(\d+)</strong> API requests", p) for p in pages]
    assert [m.group(1) if m else None for m in api] == ["8", "8"]


def test_openapi_document_needs_no_key_without_keys(service: Service) -> None:
    response = httpx.get(f"{service.url}/openapi.json")
    assert response.status_code == 200
    assert "sepal_length" in response.text


@pytest.mark.parametrize("package", [package_text_model, package_mixed_model])
def test_the_model_page_shows_text_and_category_features(package: Any, tmp_path: Path) -> None:
    bundle = package(tmp_path)
    # Both are joblib/pickle bundles, served only when the operator allows it.
    service = start_service(
        bundle, tmp_path / "service.log", env={"LUCIDSERVE_ALLOW_PICKLE": "true"}
    )
    try:
        card = service.client.get("/v1/model").json()
        page = service.client.get("/")
    finally:
        service.stop()
    assert page.status_code == 200
    for feature in card["features"]:
        assert f'data-feature="{feature["name"]}"' in page.text
        for category in feature["categories"] or []:
            assert f"<code>{category}</code>" in page.text
    assert 'data-feature="__prediction__"' in page.text
