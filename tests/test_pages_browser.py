"""The pages people look at, in a real headless Chromium against a real server.

/docs and /redoc must render from the service's own assets (the browser has no other source: the
test machine needs no network), "Try it out" must reach the model, and the model page must show
every feature's chart and its drift status. Each test saves a screenshot in its tmp_path and
asserts on the DOM.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from lucidserve.bundle.card import ModelCard
from lucidserve.bundle.reference import PREDICTION
from tests.support.browser import chromium, chromium_missing, full_page_screenshot, wait_for
from tests.support.iris_traffic import FEATURES, as_samples, iris_rows
from tests.support.processes import Service, start_service

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing())),
]

PREDICT_OPERATION = "operations-predict-predict_v1_predict_post"


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def post_rows(service: Service, rows: list[dict[str, float]], batch: int = 100) -> None:
    for start in range(0, len(rows), batch):
        response = service.client.post("/v1/predict", json={"samples": rows[start : start + batch]})
        assert response.status_code == 200, response.text


def test_docs_render_every_operation_with_the_models_example(
    service: Service, iris_bundle: Path, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(f"{service.url}/docs")
    wait_for(browser, lambda d: d.find_elements(By.ID, PREDICT_OPERATION), "the predict operation")
    paths = {
        e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock .opblock-summary-path")
    }
    full_page_screenshot(browser, tmp_path / "docs.png")
    assert {"/v1/predict", "/v1/predict/{label}", "/v1/model", "/v1/drift"} <= paths

    operation = browser.find_element(By.ID, PREDICT_OPERATION)
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    example = wait_for(
        browser,
        lambda d: operation.find_elements(By.CSS_SELECTOR, ".body-param__example, .example"),
        "the request example",
    )
    text = " ".join(e.text for e in example)  # type: ignore[attr-defined]
    card = ModelCard.model_validate_json((iris_bundle / "card.json").read_text())
    for feature in card.features:
        assert f'"{feature.name}": {feature.example:g}' in text, (feature.name, text)


def test_try_it_out_on_predict_returns_200_with_predictions(
    service: Service, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(f"{service.url}/docs")
    operation = wait_for(
        browser, lambda d: d.find_elements(By.ID, PREDICT_OPERATION), "the predict operation"
    )[0]  # type: ignore[index]
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait_for(browser, lambda d: operation.find_elements(By.CSS_SELECTOR, ".try-out__btn"), "Try")
    operation.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    wait_for(browser, lambda d: operation.find_elements(By.CSS_SELECTOR, "button.execute"), "Run")
    operation.find_element(By.CSS_SELECTOR, "button.execute").click()
    status = wait_for(
        browser,
        lambda d: operation.find_elements(
            By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"
        ),
        "the live response",
    )
    body = operation.find_element(
        By.CSS_SELECTOR, ".live-responses-table tbody .response-col_description pre"
    ).text
    full_page_screenshot(browser, tmp_path / "try-it-out.png")
    assert status[0].text.strip() == "200"  # type: ignore[index]
    assert '"predictions"' in body
    assert '"label"' in body
    assert '"model_name": "iris"' in body


def test_redoc_renders_the_operations(service: Service, browser: WebDriver, tmp_path: Path) -> None:
    browser.get(f"{service.url}/redoc")
    wait_for(
        browser,
        lambda d: "/v1/predict" in d.find_element(By.TAG_NAME, "body").text,
        "ReDoc's operations",
    )
    text = browser.find_element(By.TAG_NAME, "body").text
    full_page_screenshot(browser, tmp_path / "redoc.png")
    assert "lucidserve: iris" in text
    for summary in ("The served model's card", "Drift statistics per feature"):
        assert summary in text


def test_model_page_shows_every_features_chart_and_the_drift_status(
    service: Service, browser: WebDriver, tmp_path: Path
) -> None:
    post_rows(service, as_samples(iris_rows(200, seed=41)))
    browser.get(f"{service.url}/")
    full_page_screenshot(browser, tmp_path / "model-page.png")
    assert browser.find_element(By.ID, "model-name").text.startswith("iris")
    features = [
        e.get_attribute("data-feature")
        for e in browser.find_elements(By.CSS_SELECTOR, "article.feature-drift")
    ]
    assert features == [*FEATURES, PREDICTION]
    for article in browser.find_elements(By.CSS_SELECTOR, "article.feature-drift"):
        chart = article.find_element(By.CSS_SELECTOR, "svg.chart")
        assert chart.find_elements(By.CSS_SELECTOR, "rect.reference")
        assert chart.find_elements(By.CSS_SELECTOR, "rect.live")
        assert article.find_element(By.CSS_SELECTOR, "h3 .status").text in {
            "ok",
            "warn",
            "alert",
            "insufficient_data",
        }
    assert browser.find_element(By.ID, "drift-status").text
    assert "API requests" in browser.find_element(By.ID, "traffic-summary").text


def test_model_page_shows_alert_on_the_shifted_feature(
    iris_bundle: Path, tmp_path: Path, browser: WebDriver
) -> None:
    service = start_service(
        iris_bundle,
        tmp_path / "service.log",
        workers=2,
        env={"LUCIDSERVE_DRIFT_MIN_SAMPLES": "200"},
    )
    try:
        post_rows(service, as_samples(iris_rows(600, seed=42, shift={"petal_length": 1.5})))
        browser.get(f"{service.url}/")
        full_page_screenshot(browser, tmp_path / "model-page-shifted.png")
        status = {
            e.get_attribute("data-feature"): e.find_element(By.CSS_SELECTOR, "h3 .status").text
            for e in browser.find_elements(By.CSS_SELECTOR, "article.feature-drift")
        }
        overall = browser.find_element(By.ID, "drift-status").text
    finally:
        service.stop()
    assert status["petal_length"] == "alert"
    assert overall == "alert"
    for feature in ("sepal_length", "sepal_width", "petal_width"):
        assert status[feature] == "ok", status
