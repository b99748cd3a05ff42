"""The model page's renderer and the traffic figures it shows, in process."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram

from lucidserve.api.pages import CachedPage
from lucidserve.bundle.card import FeatureSpec, ModelCard, ValueRange
from lucidserve.bundle.reference import PREDICTION
from lucidserve.observability.metrics import LATENCY_BUCKETS
from lucidserve.observability.traffic import RouteTraffic, summarise_traffic
from lucidserve.pages.model_page import ModelPage, render_model_page

HOSTILE = "<script>alert('x')</script>&\""
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "span", "p",
    "nav", "ul", "li", "a", "main", "section", "div", "table", "caption", "thead", "tbody", "tr",
    "th", "td", "code", "strong", "article", "svg", "line", "rect", "text", "details", "summary",
    "footer",
}  # fmt: skip


class Document(HTMLParser):
    """Tags, attributes and text of a document, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def hostile_card() -> ModelCard:
    return ModelCard(
        name=f"model {HOSTILE}",
        version="1<2",
        description=HOSTILE,
        created="2026-01-01T00:00:00+00:00",
        sklearn_version="1.9",
        task="classification",
        features=[
            FeatureSpec(
                name=f"x {HOSTILE}", type="number", unit="<cm>", range=ValueRange(min=0, max=1)
            ),
            FeatureSpec(name="colour", type="category", categories=[HOSTILE, "<img src=x>"]),
        ],
        classes=[f"class {HOSTILE}", "other"],
        metrics={f"metric {HOSTILE}": 0.5},
        estimator_file="model.skops",
        estimator_format="skops",
        estimator_sha256="0" * 64,
    )  # fmt: skip


def drift_body(features: list[str]) -> dict[str, Any]:
    def one(labels: list[str]) -> dict[str, Any]:
        share = 1 / len(labels)
        bins = [{"bin": b, "reference": share, "observed": share} for b in labels]
        return {"kind": "numeric", "observations": 10, "psi": None, "pvalue": None,
                "status": "insufficient_data", "bins": bins}  # fmt: skip

    body = {name: one(["01:[0,1)", HOSTILE]) for name in features}
    body[PREDICTION] = one([f"class {HOSTILE}", "other"])
    return {"status": "insufficient_data", "window_seconds": 3600.0, "min_samples": 500,
            "warn_psi": 0.1, "alert_psi": 0.25, "features": body}  # fmt: skip


def traffic(routes: dict[str, list[float]], seconds: float = 10.0) -> Any:
    registry = CollectorRegistry()
    histogram = Histogram(
        "http_server_request_duration_seconds",
        "",
        ["http_request_method", "http_route", "http_response_status_code"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    for key, durations in routes.items():
        route, status = key.split(" ")
        for d in durations:
            histogram.labels("POST", route, status).observe(d)
    return summarise_traffic(registry.collect(), seconds)


def test_every_card_and_traffic_value_is_escaped() -> None:
    card = hostile_card()
    summary = traffic({f"/v1/{HOSTILE} 200": [0.01]})
    page = ModelPage(
        card, drift_body([f.name for f in card.features]), summary, [("/docs", "d")], 0.0, 5
    )
    document = Document(render_model_page(page))
    assert document.tags <= ALLOWED_TAGS
    text = "".join(document.text)
    for shown in (card.name, HOSTILE, "<img src=x>", f"class {HOSTILE}", f"/v1/{HOSTILE}", "<cm>"):
        assert shown in text, shown
    features = [value for name, value in document.attributes if name == "data-feature"]
    assert features == [f"x {HOSTILE}", "colour", PREDICTION]


def test_the_page_says_when_drift_and_metrics_are_off() -> None:
    page = ModelPage(hostile_card(), None, None, [], 0.0, 5)
    text = "".join(Document(render_model_page(page)).text)
    assert "Drift monitoring is off" in text
    assert "Metrics are off" in text


def test_route_traffic_counts_server_errors_and_groups_the_api_routes() -> None:
    summary = traffic(
        {
            "/v1/predict 200": [0.003] * 8,
            "/v1/predict 503": [0.003] * 2,
            "/v1/model 200": [0.001] * 10,
            "/healthz 200": [0.0001] * 30,
        },
        seconds=20.0,
    )
    assert [r.route for r in summary.routes] == ["/healthz", "/v1/model", "/v1/predict"]
    assert summary.api.requests == 20
    assert summary.api.server_errors == 2
    assert summary.api.error_ratio == pytest.approx(0.1)
    assert summary.rate(summary.api) == pytest.approx(1.0)


def test_quantiles_interpolate_inside_the_bucket_like_histogram_quantile() -> None:
    route = RouteTraffic(
        "r", requests=100, buckets={0.01: 50, 0.02: 90, 0.05: 100, float("inf"): 100}
    )
    assert route.quantile(0.5) == pytest.approx(0.01)
    assert route.quantile(0.7) == pytest.approx(0.015)
    assert route.quantile(0.95) == pytest.approx(0.035)
    assert route.quantile(0.25) == pytest.approx(0.005)


def test_a_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    route = RouteTraffic("r", requests=10, buckets={0.01: 5, 10.0: 5, float("inf"): 10})
    assert route.quantile(0.99) == 10.0


def test_no_requests_no_quantile() -> None:
    assert RouteTraffic("r").quantile(0.5) is None
    assert RouteTraffic("r").error_ratio is None


def test_a_built_page_is_served_until_it_is_older_than_the_cache_time() -> None:
    now = [100.0]
    builds: list[float] = []

    def build() -> bytes:
        builds.append(now[0])
        return f"page {len(builds)}".encode()

    cache = CachedPage(build, 5.0, lambda: now[0])
    assert cache.get() == b"page 1"
    now[0] = 104.9
    assert cache.get() == b"page 1"
    now[0] = 105.0
    assert cache.get() == b"page 2"
    assert builds == [100.0, 105.0]
