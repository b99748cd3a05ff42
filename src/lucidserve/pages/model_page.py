"""The model page's HTML: the card, drift per feature, and the service's traffic, in one document.

Rendered on the server from plain data, with the stylesheet inline and the charts as inline SVG: no
build step, no script, nothing loaded from elsewhere. Every value that comes from the card or from
traffic (feature names, categories, bin labels) is HTML-escaped where it is inserted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from lucidserve.bundle.card import FeatureSpec, ModelCard
from lucidserve.bundle.reference import PREDICTION
from lucidserve.observability.traffic import QUANTILES, RouteTraffic, TrafficSummary
from lucidserve.pages.charts import distribution_chart


@dataclass(frozen=True)
class ModelPage:
    """What the page shows; `drift` is the GET /v1/drift body (None when drift is off)."""

    card: ModelCard
    drift: Mapping[str, Any] | None
    traffic: TrafficSummary | None
    links: Sequence[tuple[str, str]]
    built_at: float
    cache_seconds: float


def render_model_page(page: ModelPage) -> str:
    """The complete HTML document."""
    card = page.card
    title = f"{card.name} {card.version}"
    built = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(page.built_at))
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)} \u2013 lucidserve</title><style>{STYLE}</style></head><body>",
            f'<header><h1 id="model-name">{escape(card.name)} ',
            f'<span id="model-version">{escape(card.version)}</span></h1>',
            f"<p>{escape(card.description)}</p>" if card.description else "",
            _links(page.links),
            "</header><main>",
            _model_section(card),
            _traffic_section(page.traffic),
            _drift_section(card, page.drift),
            "</main>",
            f"<footer>Built {built}; served from a cache for up to {page.cache_seconds:g} s.",
            "</footer></body></html>",
        ]
    )


def _links(links: Sequence[tuple[str, str]]) -> str:
    items = "".join(f'<li><a href="{escape(href)}">{escape(text)}</a></li>' for href, text in links)
    return f'<nav><ul class="links">{items}</ul></nav>'


def _model_section(card: ModelCard) -> str:
    facts = [
        ("Task", card.task),
        ("Created", card.created),
        ("scikit-learn", card.sklearn_version),
        ("Target", card.target or "\u2013"),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    if card.classes:
        classes = ", ".join(f"<code>{escape(c)}</code>" for c in card.classes)
        rows += f'<tr><th>Classes</th><td id="classes">{classes}</td></tr>'
    metrics = "".join(
        f"<tr><th>{escape(name)}</th><td>{_number(value)}</td></tr>"
        for name, value in card.metrics.items()
    )
    features = "".join(_feature_row(f) for f in card.features)
    return (
        '<section id="model"><h2>Model</h2><div class="columns">'
        f"<table>{rows}</table>"
        f'<table id="holdout-metrics"><caption>Holdout metrics</caption>{metrics}</table></div>'
        '<table id="features"><caption>Features</caption><thead><tr><th>Name</th><th>Type</th>'
        "<th>Unit</th><th>Observed range or categories</th><th>Description</th></tr></thead>"
        f"<tbody>{features}</tbody></table></section>"
    )


def _feature_row(feature: FeatureSpec) -> str:
    if feature.range is not None:
        observed = f"{_number(feature.range.min)} \u2013 {_number(feature.range.max)}"
    elif feature.categories:
        observed = ", ".join(f"<code>{escape(c)}</code>" for c in feature.categories)
    elif feature.max_length is not None:
        observed = f"up to {feature.max_length} characters"
    else:
        observed = "\u2013"
    return (
        f"<tr><td><code>{escape(feature.name)}</code></td><td>{escape(feature.type)}</td>"
        f"<td>{escape(feature.unit or '')}</td><td>{observed}</td>"
        f"<td>{escape(feature.description)}</td></tr>"
    )


def _traffic_section(traffic: TrafficSummary | None) -> str:
    if traffic is None:
        return (
            '<section id="traffic"><h2>Traffic</h2>'
            "<p>Metrics are off (LUCIDSERVE_METRICS_ENABLED=false).</p></section>"
        )
    api = traffic.api
    headline = (
        f'<p id="traffic-summary">Since start ({_duration(traffic.seconds)} ago): '
        f"<strong>{api.requests}</strong> API requests, "
        f"<strong>{traffic.rate(api):.2f}</strong> per second, error ratio (5xx) "
        f"<strong>{_ratio(api.error_ratio)}</strong>, latency "
        + ", ".join(f"p{q * 100:g} <strong>{_ms(api.quantile(q))}</strong>" for q in QUANTILES)
        + ".</p>"
    )
    head = "".join(f"<th>p{q * 100:g}</th>" for q in QUANTILES)
    rows = "".join(_route_row(traffic, r) for r in [api, *traffic.routes])
    return (
        f'<section id="traffic"><h2>Traffic</h2>{headline}'
        '<table id="routes"><thead><tr><th>Route</th><th>Requests</th><th>Per second</th>'
        f"<th>5xx ratio</th>{head}</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _route_row(traffic: TrafficSummary, route: RouteTraffic) -> str:
    cells = "".join(f"<td>{_ms(route.quantile(q))}</td>" for q in QUANTILES)
    return (
        f"<tr><td><code>{escape(route.route)}</code></td><td>{route.requests}</td>"
        f"<td>{traffic.rate(route):.2f}</td><td>{_ratio(route.error_ratio)}</td>{cells}</tr>"
    )


def _drift_section(card: ModelCard, drift: Mapping[str, Any] | None) -> str:
    if drift is None:
        return (
            '<section id="drift"><h2>Drift</h2><p>Drift monitoring is off (drift or metrics '
            "switched off, or the card has no drift reference).</p></section>"
        )
    specs = {f.name: f for f in card.features}
    status = str(drift["status"])
    intro = (
        f'<p>Overall: <span id="drift-status" class="status {escape(status)}">'
        f"{escape(status)}</span>. The live distribution is the last "
        f"{_duration(float(drift['window_seconds']))} of traffic, pooled over all workers; "
        f"statistics need {int(drift['min_samples'])} observations; <code>warn</code> above "
        f"PSI {_number(drift['warn_psi'])}, <code>alert</code> above "
        f"{_number(drift['alert_psi'])}.</p>"
        '<p class="legend"><span class="swatch reference"></span> reference '
        '<span class="swatch live"></span> live (last window)</p>'
    )
    cards = "".join(
        _feature_drift(name, stats, specs.get(name)) for name, stats in drift["features"].items()
    )
    return f'<section id="drift"><h2>Drift</h2>{intro}<div class="grid">{cards}</div></section>'


def _feature_drift(name: str, stats: Mapping[str, Any], spec: FeatureSpec | None) -> str:
    bins = [b for b in stats["bins"] if b["reference"] > 0 or b["observed"] > 0]
    labels = [_bin_label(str(b["bin"])) for b in bins]
    heading = "Prediction" if name == PREDICTION else name
    unit = f" ({spec.unit})" if spec is not None and spec.unit else ""
    chart = distribution_chart(
        labels,
        [float(b["reference"]) for b in bins],
        [float(b["observed"]) for b in bins],
        title=f"{heading}: reference and live distribution",
    )
    status = str(stats["status"])
    table = "".join(
        f"<tr><td>{escape(label)}</td><td>{float(b['reference']):.1%}</td>"
        f"<td>{float(b['observed']):.1%}</td></tr>"
        for label, b in zip(labels, bins, strict=True)
    )
    return (
        f'<article class="feature-drift" data-feature="{escape(name)}" '
        f'data-status="{escape(status)}"><h3><code>{escape(heading)}</code>{escape(unit)} '
        f'<span class="status {escape(status)}">{escape(status)}</span></h3>'
        f'<p class="stats">PSI <strong>{_optional(stats["psi"], ".3f")}</strong>, p-value '
        f"<strong>{_optional(stats['pvalue'], '.3g')}</strong>, "
        f"{int(stats['observations'])} observations</p>{chart}"
        "<details><summary>Bins</summary><table><thead><tr><th>Bin</th><th>Reference</th>"
        f"<th>Live</th></tr></thead><tbody>{table}</tbody></table></details></article>"
    )


def _bin_label(label: str) -> str:
    # Numeric bins are stored as "NN:[low,high)" so that they sort; the number is for machines.
    prefix, sep, rest = label.partition(":")
    return rest if sep and prefix.isdigit() else label


def _optional(value: Any, spec: str) -> str:
    return "\u2013" if value is None else format(float(value), spec)


def _number(value: Any) -> str:
    return escape(format(float(value), ".4g"))


def _ratio(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:.2%}"


def _ms(seconds: float | None) -> str:
    return "\u2013" if seconds is None else f"{seconds * 1000:.1f} ms"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1d3557;color:#fff;padding:1rem 2rem}header h1{margin:0 0 .3rem}
header p{margin:.2rem 0}header a{color:#dbe9ff}
.links{list-style:none;padding:0;margin:.4rem 0 0;display:flex;gap:1.2rem;flex-wrap:wrap}
main{padding:0 2rem 2rem}h2{border-bottom:1px solid #ccd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 1.5rem .5rem 0;background:#fff}
th,td{border:1px solid #dde;padding:.25rem .55rem;text-align:left;vertical-align:top}
caption{text-align:left;font-weight:600;padding:.2rem 0}
.columns{display:flex;flex-wrap:wrap;align-items:flex-start}
.grid{display:flex;flex-wrap:wrap;gap:1rem}
.feature-drift{background:#fff;border:1px solid #dde;border-radius:6px;padding:.6rem .9rem}
.feature-drift h3{margin:.1rem 0 .3rem;font-size:1rem}.stats{margin:.2rem 0}
.status{border-radius:4px;padding:.05rem .45rem;font-size:.85rem;font-weight:600;color:#fff}
.status.ok{background:#2a7d4f}.status.warn{background:#b7791f}.status.alert{background:#c53030}
.status.insufficient_data{background:#6b7280}
.chart rect.reference,.swatch.reference{fill:#9aa5b1;background:#9aa5b1}
.chart rect.live,.swatch.live{fill:#2b6cb0;background:#2b6cb0}
.chart .axis{stroke:#667}.chart text{font-size:10px;fill:#334}
.swatch{display:inline-block;width:.8rem;height:.8rem;vertical-align:middle}
footer{padding:0 2rem 1.5rem;color:#556;font-size:.85rem}
"""
