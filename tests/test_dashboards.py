"""The Grafana dashboards: generated from code, complete, and querying only what exists.

Static checks read the committed JSON; the live checks start the real service and a real
Prometheus (with the project's rules), send bounded traffic, and query what the dashboards ask.
"""

from __future__ import annotations

import ast
import math
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.frame_models import PackagedModel, samples
from tests.support.processes import REPO, Service, start_service, wait_until
from tests.support.prometheus import Prometheus, prometheus_binary, start_prometheus
from tests.support.promql import (
    DASHBOARDS,
    RULES,
    DashboardQuery,
    counter_misuses,
    dashboard_queries,
    load_dashboard,
    load_rules,
    metric_names,
    panels,
    range_durations,
    recorded_names,
    rules,
    substitute,
)

# Metrics the dashboards and rules read that lucidserve does not export: they come from
# Prometheus itself (`up`), kube-state-metrics (kube_*) and the kubelet's cAdvisor (container_*),
# all part of kube-prometheus-stack. Nothing else may be missing from a scrape of the service.
EXTERNAL_METRICS = {
    "up": "Prometheus, one series per scrape target",
    "kube_pod_status_ready": "kube-state-metrics",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
    "kube_pod_container_resource_limits": "kube-state-metrics",
    "container_cpu_usage_seconds_total": "cAdvisor",
    "container_memory_working_set_bytes": "cAdvisor",
}
# Present in the test's Prometheus; the others have no exporter here.
EXTERNAL_IN_TEST = {"up"}

RATE_INTERVAL_SENTINEL = "4242s"  # stands for $__rate_interval: no query writes it by hand
STATIC_VALUES = {"namespace": ".*", "job": ".*", "model": ".*", "task": ".*"}
SHARED_VARIABLES = ["datasource", "namespace", "job", "model"]
MODEL_DASHBOARD = REPO / "grafana" / "dashboards" / "lucidserve-model.json"
METRICS_MODULE = REPO / "src" / "lucidserve" / "observability" / "metrics.py"
METRIC_CONSTRUCTORS = {
    "Histogram",
    "Counter",
    "Gauge",
    "model_histogram",
    "model_counter",
    "model_gauge",
}
# The model dashboard's rows for one task each, and the task their queries are joined to.
TASK_ROWS = {"Predictions: classifiers": "classification", "Predictions: regressors": "regression"}
QUERIES = [query for path in DASHBOARDS for query in dashboard_queries(path)]
PANEL_QUERIES = [query for query in QUERIES if not query.where.startswith("variable ")]
IRIS_SAMPLE = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def _ids(queries: list[DashboardQuery]) -> list[str]:
    return [f"{query.dashboard}:{query.where}:{i}" for i, query in enumerate(queries)]


def test_three_dashboards_are_committed() -> None:
    assert [path.stem for path in DASHBOARDS] == [
        "lucidserve-model",
        "lucidserve-service",
        "lucidserve-slo",
    ]


def test_committed_files_are_what_the_generator_writes() -> None:
    """grafana/dashboards/*.json and the two generated k8s manifests are up to date."""
    result = subprocess.run(
        [sys.executable, "-m", "grafana.generator", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_panel_has_a_unit_a_description_and_the_datasource_variable(path: Path) -> None:
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels(load_dashboard(path)):
        where = f"{path.stem} / {panel['title']}"
        assert panel.get("description", "").strip(), f"{where}: no description"
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        assert panel["datasource"] == datasource, where
        assert panel["targets"], f"{where}: no query"
        for target in panel["targets"]:
            assert target["datasource"] == datasource, where


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_variables_are_datasource_namespace_job_and_model(path: Path) -> None:
    """The shared four first; the model dashboard adds the task (model_info's task label)."""
    variables = {v["name"]: v for v in load_dashboard(path)["templating"]["list"]}
    own = ["task"] if path == MODEL_DASHBOARD else []
    assert list(variables) == SHARED_VARIABLES + own
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "job", "model", *own):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    if own:
        assert variables["task"]["query"].startswith("label_values(model_info{")
        assert variables["task"]["query"].endswith(", task)")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_no_datasource_uid_is_hard_coded(path: Path) -> None:
    def datasource_uids(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("datasource"), dict):
                yield str(node["datasource"].get("uid"))
            for value in node.values():
                yield from datasource_uids(value)
        elif isinstance(node, list):
            for value in node:
                yield from datasource_uids(value)

    uids = set(datasource_uids(load_dashboard(path)))
    assert uids == {"${datasource}"}


@pytest.mark.parametrize("query", QUERIES, ids=_ids(QUERIES))
def test_every_expression_parses_with_the_variables_substituted(query: DashboardQuery) -> None:
    expr = substitute(query.expr, {**STATIC_VALUES, "__rate_interval": "1m"})
    assert metric_names(expr), f"{query}: selects no metric"


@pytest.mark.parametrize("query", PANEL_QUERIES, ids=_ids(PANEL_QUERIES))
def test_every_range_is_the_rate_interval(query: DashboardQuery) -> None:
    expr = substitute(query.expr, {**STATIC_VALUES, "__rate_interval": RATE_INTERVAL_SENTINEL})
    sentinel = timedelta(seconds=int(RATE_INTERVAL_SENTINEL.rstrip("s")))
    assert all(duration == sentinel for duration in range_durations(expr)), str(query)


@pytest.mark.parametrize("query", PANEL_QUERIES, ids=_ids(PANEL_QUERIES))
def test_counters_are_only_read_through_rate_or_increase(query: DashboardQuery) -> None:
    expr = substitute(query.expr, {**STATIC_VALUES, "__rate_interval": "1m"})
    assert counter_misuses(expr) == [], str(query)


def test_latency_panels_ask_for_exemplars() -> None:
    with_exemplars = {(q.dashboard, q.where) for q in PANEL_QUERIES if q.exemplar}
    assert with_exemplars >= {
        ("lucidserve-service", "API latency p50 / p90 / p99"),
        ("lucidserve-service", "API latency distribution"),
        ("lucidserve-model", "Inference latency p50 / p90 / p99"),
    }


def test_drift_psi_panels_draw_the_0_1_and_0_25_thresholds() -> None:
    board = load_dashboard(REPO / "grafana" / "dashboards" / "lucidserve-model.json")
    psi_panels = [panel for panel in panels(board) if panel["title"].startswith("Drift PSI")]
    assert psi_panels
    for panel in psi_panels:
        defaults = panel["fieldConfig"]["defaults"]
        steps = [step["value"] for step in defaults["thresholds"]["steps"]]
        assert steps == [None, 0.1, 0.25]
        assert defaults["custom"]["thresholdsStyle"]["mode"] != "off"


def test_each_prediction_row_shows_only_models_of_its_task() -> None:
    """Every query of a task's row is joined to model_info of that task and of the task
    variable's choice, so a classifier's panels stay empty for a regressor and the other way."""
    rows = _rows(load_dashboard(MODEL_DASHBOARD))
    assert set(TASK_ROWS) <= set(rows)
    for row, task in TASK_ROWS.items():
        assert rows[row], row
        for panel in rows[row]:
            for target in panel["targets"]:
                expr = substitute(target["expr"], {**STATIC_VALUES, "__rate_interval": "1m"})
                matchers = _model_info_matchers(expr)
                assert ("task", "=", task) in matchers, (panel["title"], expr)
                assert ("task", "=~", ".*") in matchers, (panel["title"], expr)


def test_regressor_panels_show_the_predicted_value_quantiles_and_its_buckets() -> None:
    panels_ = {
        p["title"]: p for p in _rows(load_dashboard(MODEL_DASHBOARD))["Predictions: regressors"]
    }
    quantiles = panels_["Predicted value p10 / p50 / p90 and mean"]["targets"]
    exprs = [target["expr"] for target in quantiles]
    for q in ("0.1", "0.5", "0.9"):
        assert any(e.startswith(f"histogram_quantile({q}, ") for e in exprs), q
    heatmap = panels_["Predicted value distribution"]
    assert heatmap["type"] == "heatmap"
    assert "model_prediction_value_bucket" in heatmap["targets"][0]["expr"]


def test_output_drift_is_shown_for_both_tasks() -> None:
    """The prediction's drift (feature __prediction__) has its own row, with no task filter."""
    rows = _rows(load_dashboard(MODEL_DASHBOARD))
    exprs = [t["expr"] for panel in rows["Output drift"] for t in panel["targets"]]
    assert any("model:drift_psi:window1h" in e and 'feature="__prediction__"' in e for e in exprs)
    assert any("model_drift_psi{" in e and 'feature="__prediction__"' in e for e in exprs)
    assert not any('task="' in e for e in exprs)
    inputs = [t["expr"] for panel in rows["Input drift"] for t in panel["targets"]]
    assert all('feature!="__prediction__"' in e for e in inputs)


@pytest.mark.parametrize("row", list(TASK_ROWS))
def test_prediction_panels_read_metrics_the_service_defines(row: str) -> None:
    """Each metric a task's row reads is created in observability/metrics.py (exposed as the
    name, or for a histogram its _bucket/_sum/_count, for a counter its _total)."""
    defined = _defined_metric_names()
    assert {"model_info", "model_prediction_confidence", "model_predictions"} <= defined
    undefined = set()
    for panel in _rows(load_dashboard(MODEL_DASHBOARD))[row]:
        for target in panel["targets"]:
            expr = substitute(target["expr"], {**STATIC_VALUES, "__rate_interval": "1m"})
            for name in metric_names(expr):
                if not any(_exposed_as(base, name) for base in defined):
                    undefined.add(name)
    assert undefined == set()


def test_kubernetes_configmaps_carry_the_dashboards_for_the_grafana_sidecar() -> None:
    path = REPO / "deploy" / "k8s" / "base" / "grafana-dashboards.yaml"
    configmaps = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    carried = {}
    for configmap in configmaps:
        assert configmap["kind"] == "ConfigMap"
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        carried.update(configmap["data"])
    assert carried == {path.name: path.read_text() for path in DASHBOARDS}


def _rows(board: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Row title -> the panels under it (the dashboards' rows are not collapsed)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            current = rows.setdefault(panel["title"], [])
        else:
            current.append(panel)
    return rows


def _model_info_matchers(expr: str) -> set[tuple[str, str, str]]:
    """(label, operator, value) of every model_info selector in `expr`."""
    operators = {"MatchOp.Equal": "=", "MatchOp.Re": "=~", "MatchOp.NotEqual": "!=",
                 "MatchOp.NotRe": "!~"}  # fmt: skip
    found: set[tuple[str, str, str]] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name == "model_info":
            found.update((m.name, operators[str(m.op)], m.value) for m in node.matchers.matchers)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def _defined_metric_names() -> set[str]:
    """Names passed to the metric constructors in observability/metrics.py (as a literal or a
    module constant): the metrics the service defines."""
    tree = ast.parse(METRICS_MODULE.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if called not in METRIC_CONSTRUCTORS:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
        elif isinstance(first, ast.Name) and first.id in constants:
            names.add(constants[first.id])
    return names


def _exposed_as(defined: str, name: str) -> bool:
    return name == defined or name in {
        f"{defined}{suffix}" for suffix in ("_total", "_bucket", "_sum", "_count")
    }


def _task_of(query: DashboardQuery) -> str | None:
    """The task a query's panel is restricted to (joined to model_info{task=...}), if any."""
    match = re.search(r'model_info\{[^}]*task="(\w+)"', query.expr)
    return match[1] if match else None


# --- live: the real service, scraped by a real Prometheus with the project's rules -------------


@dataclass
class Live:
    service: Service
    prometheus: Prometheus
    exported: set[str]


@pytest.fixture(scope="module")
def live(iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Service (drift statistics from 10 samples on) + Prometheus scraping it every second, under a
    trickle of traffic while the tests query (bounded: stops at teardown, or after 3000 requests,
    about a minute)."""
    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed (scripts/system-packages.txt; make system-deps)")
    workdir = tmp_path_factory.mktemp("live-prometheus")
    service = start_service(
        iris_bundle,
        workdir / "service.log",
        workers=2,
        env={"LUCIDSERVE_DRIFT_MIN_SAMPLES": "10", "OTEL_TRACES_SAMPLER": "always_on"},
    )
    with _scraped(
        service, workdir, partial(_trickle, service), "sum(model_predictions_total) > 100"
    ) as live:
        yield live


@contextmanager
def _scraped(
    service: Service, workdir: Path, traffic: Callable[[threading.Event], None], enough: str
) -> Iterator[Live]:
    """`service` scraped every second by a Prometheus with the rules, `traffic` running (until its
    event is set) from the first scrape on; yielded once `enough` has samples. Everything is
    stopped after, the service too."""
    prometheus: Prometheus | None = None
    stop = threading.Event()
    thread = threading.Thread(target=traffic, args=(stop,), daemon=True)
    try:
        prometheus = start_prometheus(
            [f"127.0.0.1:{service.metrics_port}"], workdir, rule_files=[RULES]
        )
        prometheus.wait_for_series('up{job="lucidserve"} == 1')
        thread.start()
        prometheus.wait_for_series(enough)
        yield Live(service, prometheus, _exported_names(service))
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=30)
        if prometheus is not None:
            prometheus.stop()
        service.stop()


def _trickle(service: Service, stop: threading.Event) -> None:
    """Predictions in batches of 1-3; one request in 20 invalid, one for an unknown label."""
    for i in range(3000):
        if stop.wait(0.01):
            return
        if i % 20 == 0:
            service.client.post("/v1/predict", json={"samples": [{"unknown": 1}]})
            service.client.post("/v1/predict/no-such-label", json={"samples": [IRIS_SAMPLE]})
        else:
            service.client.post("/v1/predict", json={"samples": [IRIS_SAMPLE] * (1 + i % 3)})


def _exported_names(service: Service) -> set[str]:
    """Every sample name on /metrics (histograms contribute _bucket, _count and _sum)."""
    text = service.metrics()
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def _used_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used, over dashboards and the rules file; a regressor's panels
    aside (the live service serves a classifier: test_prediction_panels_read_metrics_the_service
    _defines checks those names against metrics.py)."""
    used: dict[str, set[str]] = {}
    for query in QUERIES:
        if _task_of(query) == "regression":
            continue
        expr = substitute(query.expr, {**STATIC_VALUES, "__rate_interval": "1m"})
        for name in metric_names(expr):
            used.setdefault(name, set()).add(f"{query.dashboard} / {query.where}")
    for rule in rules(load_rules()):
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"rule {rule.get('record') or rule.get('alert')}")
    return used


@pytest.mark.slow
def test_every_metric_named_is_exported_recorded_or_external(live: Live) -> None:
    recorded = recorded_names(load_rules())
    missing = {
        name: sorted(where)
        for name, where in _used_metrics().items()
        if name not in live.exported and name not in recorded and name not in EXTERNAL_METRICS
    }
    assert missing == {}, f"named but neither exported nor recorded: {missing}"


@pytest.mark.slow
def test_every_recording_rule_yields_samples(live: Live) -> None:
    for name in sorted(recorded_names(load_rules())):
        live.prometheus.wait_for_series(name, timeout=15)
    unhealthy = [
        (rule["name"], rule.get("lastError"))
        for group in live.prometheus.rule_groups()
        for rule in group["rules"]
        if rule.get("health") != "ok"
    ]
    assert unhealthy == []


@pytest.mark.slow
def test_every_dashboard_query_returns_data(live: Live) -> None:
    """Each query (kube-state-metrics and cAdvisor ones aside) returns a finite number, but a
    regressor's: those return nothing for the served classifier (iris)."""
    values = {
        "namespace": "test",
        "job": "lucidserve",
        "model": "iris",
        "task": ".*",
        "__rate_interval": "30s",
    }
    absent_here = set(EXTERNAL_METRICS) - EXTERNAL_IN_TEST
    empty = []
    regressor_queries = [query for query in QUERIES if _task_of(query) == "regression"]
    assert regressor_queries
    for query in QUERIES:
        expr = substitute(query.expr, values)
        if metric_names(expr) & absent_here or query in regressor_queries:
            continue

        def finite(expr: str = expr) -> list[float]:
            numbers = [float(series["value"][1]) for series in live.prometheus.query(expr)]
            return [number for number in numbers if math.isfinite(number)]

        try:
            wait_until(finite, timeout=10, interval=0.25, what=expr)
        except TimeoutError:
            empty.append(f"{query} -> {live.prometheus.query(expr)}")
    assert empty == []
    # The classifier's own series are there by now; none reaches a regressor's panel.
    for query in regressor_queries:
        assert live.prometheus.query(substitute(query.expr, values)) == [], str(query)


@pytest.mark.slow
def test_the_task_variable_lists_the_served_models_task(live: Live) -> None:
    (query,) = [q for q in QUERIES if q.where == "variable task"]
    values = {"namespace": "test", "job": "lucidserve", "model": "iris"}
    series = live.prometheus.query(substitute(query.expr, values))
    assert {s["metric"]["task"] for s in series} == {"classification"}


@pytest.mark.slow
def test_exemplar_queries_find_trace_ids_under_the_label_grafana_links(live: Live) -> None:
    """Panels that ask for exemplars get some, labelled as the provisioned Prometheus data
    source expects (exemplarTraceIdDestinations), so a click opens the trace."""
    provisioning = REPO / "grafana" / "provisioning" / "datasources" / "datasources.yml"
    (prometheus,) = [
        ds
        for ds in yaml.safe_load(provisioning.read_text())["datasources"]
        if ds["type"] == "prometheus"
    ]
    (destination,) = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    values = {"namespace": "test", "job": "lucidserve", "model": "iris", "__rate_interval": "30s"}
    for query in (query for query in PANEL_QUERIES if query.exemplar):
        expr = substitute(query.expr, values)

        def exemplars(expr: str = expr) -> list[dict[str, str]]:
            end = time.time()
            return [
                exemplar["labels"]
                for series in live.prometheus.query_exemplars(expr, end - 300, end)
                for exemplar in series["exemplars"]
            ]

        labels = wait_until(exemplars, timeout=10, interval=0.25, what=f"exemplars of {query}")
        for label_set in labels:
            assert re.fullmatch(r"[0-9a-f]{32}", label_set[destination["name"]]), label_set


# --- live: a regressor (HistGradientBoostingRegressor on the diabetes DataFrame) -----------------


@pytest.fixture(scope="module")
def live_regressor(
    diabetes_model: PackagedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """The regressor served, scraped every second by Prometheus with the rules, under a trickle of
    its own reference rows (bounded like the classifier's)."""
    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed (scripts/system-packages.txt; make system-deps)")
    rows = samples(diabetes_model.saved.frame)
    workdir = tmp_path_factory.mktemp("live-regressor")
    service = start_service(
        diabetes_model.bundle, workdir / "service.log", env={"LUCIDSERVE_DRIFT_MIN_SAMPLES": "10"}
    )

    def trickle(stop: threading.Event) -> None:
        for i in range(3000):
            if stop.wait(0.01):
                return
            batch = [rows[(i * 3 + k) % len(rows)] for k in range(1 + i % 3)]
            service.client.post("/v1/predict", json={"samples": batch})

    with _scraped(service, workdir, trickle, "sum(model_prediction_value_count) > 100") as live:
        yield live


@pytest.mark.slow
def test_a_regressor_fills_its_rows_and_leaves_the_classifier_row_empty(
    live_regressor: Live,
) -> None:
    values = {
        "namespace": "test",
        "job": "lucidserve",
        "model": "diabetes",
        "task": ".*",
        "__rate_interval": "30s",
    }
    rows = _rows(load_dashboard(MODEL_DASHBOARD))
    filled = [*rows["Predictions: regressors"], *rows["Output drift"]]
    empty = []
    for panel in filled:
        for target in panel["targets"]:
            expr = substitute(target["expr"], values)

            def finite(expr: str = expr) -> list[float]:
                numbers = [float(s["value"][1]) for s in live_regressor.prometheus.query(expr)]
                return [number for number in numbers if math.isfinite(number)]

            try:
                wait_until(finite, timeout=10, interval=0.25, what=expr)
            except TimeoutError:
                empty.append(f"{panel['title']}: {expr}")
    assert empty == []
    for panel in rows["Predictions: classifiers"]:
        for target in panel["targets"]:
            expr = substitute(target["expr"], values)
            assert live_regressor.prometheus.query(expr) == [], panel["title"]
    (task,) = [q for q in QUERIES if q.where == "variable task"]
    series = live_regressor.prometheus.query(substitute(task.expr, values))
    assert {s["metric"]["task"] for s in series} == {"regression"}


@pytest.mark.slow
def test_a_regressor_exports_every_metric_its_panels_read(live_regressor: Live) -> None:
    rows = _rows(load_dashboard(MODEL_DASHBOARD))
    used = {
        name
        for panel in rows["Predictions: regressors"]
        for target in panel["targets"]
        for name in metric_names(
            substitute(target["expr"], {**STATIC_VALUES, "__rate_interval": "1m"})
        )
    }
    assert used - live_regressor.exported == set()
    assert "model_prediction_confidence_bucket" not in live_regressor.exported
