"""deploy/prometheus/rules.yml: valid for promtool, unit-tested, documented, and the fleet drift
PSI it records equals the PSI the service computes itself."""

from __future__ import annotations

import math
import operator
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import promql_parser
import pytest
import yaml

from tests.support.iris_traffic import as_samples, iris_rows
from tests.support.processes import REPO, Service, start_service, wait_until
from tests.support.prometheus import Prometheus, prometheus_binary, start_prometheus
from tests.support.promql import RULES, load_rules, recorded_names, rules

RULE_TESTS = sorted((REPO / "deploy" / "prometheus" / "tests").glob("*.yml"))
RUNBOOKS = REPO / "docs" / "runbooks.md"
RUNBOOK_URL = "https://github.com/lucidserve/lucidserve/blob/main/docs/runbooks.md#"
PROMETHEUS_RULE = REPO / "deploy" / "k8s" / "base" / "prometheusrule.yaml"
# (long window, short window) -> burn-rate factor, per the SRE workbook's recommendation.
BURN_RATES = {("1h", "5m"): 14.4, ("6h", "30m"): 6.0, ("3d", "6h"): 1.0}
EPSILON = 1e-4  # the clamp of empty bins, in the rules and in the service

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is missing (Debian package prometheus: scripts/system-packages.txt)",
)


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules(load_rules()) if "alert" in rule]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_promtool_check_rules_passes() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {alert["alert"] for alert in _alerts()}
    assert names - firing == set(), "alerts never seen firing"
    assert names - quiet == set(), "alerts never seen staying quiet"


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: alert["alert"])
def test_every_alert_has_severity_summary_description_and_runbook(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in {"critical", "warning"}
    annotations = alert["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert annotations["runbook_url"] == RUNBOOK_URL + alert["alert"].lower()


def test_every_runbook_url_lands_on_a_heading_of_the_runbooks() -> None:
    # GitHub's anchors: the heading, lower-cased, spaces to hyphens, punctuation dropped.
    anchors = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    targets = {alert["annotations"]["runbook_url"].split("#", 1)[1] for alert in _alerts()}
    assert targets - anchors == set()


def test_burn_rate_alerts_pair_the_three_windows_for_both_slos() -> None:
    pairs = {
        (alert["labels"]["slo"], alert["labels"]["long_window"], alert["labels"]["short_window"])
        for alert in _alerts()
        if "slo" in alert["labels"]
    }
    assert pairs == {
        (slo, *windows) for slo in ("availability", "latency") for windows in BURN_RATES
    }


def test_burn_rate_alerts_use_the_recorded_objectives_and_their_windows() -> None:
    """Both windows compare against factor * (1 - objective), with the objective recorded for
    the dashboards (lucidserve:slo_objective:ratio)."""
    objectives = {
        rule["labels"]["slo"]: _constant(promql_parser.parse(rule["expr"]).args[0])
        for rule in rules(load_rules())
        if rule.get("record") == "lucidserve:slo_objective:ratio"
    }
    assert objectives == {"availability": 0.999, "latency": 0.99}
    for alert in (alert for alert in _alerts() if "slo" in alert["labels"]):
        labels = alert["labels"]
        factor = BURN_RATES[(labels["long_window"], labels["short_window"])]
        thresholds = _thresholds(alert["expr"])
        assert len(thresholds) == 2, alert["expr"]
        for threshold in thresholds:
            assert math.isclose(threshold, factor * (1 - objectives[labels["slo"]])), alert["expr"]
        windows = {re.sub(r".*ratio_rate", "", name) for name in _names(alert["expr"])}
        assert windows == {labels["long_window"], labels["short_window"]}, alert["expr"]


def test_prometheus_rule_manifest_wraps_the_rules_file() -> None:
    manifest = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert manifest["spec"]["groups"] == load_rules()["groups"]


# --- the fleet drift PSI -----------------------------------------------------------------------


def _psi(observed: np.ndarray, reference: np.ndarray) -> float:
    """PSI as the issue defines it, computed here independently of PromQL."""
    p_obs = np.maximum(observed / observed.sum(), EPSILON)
    p_ref = np.maximum(reference, EPSILON)
    return float(np.sum((p_obs - p_ref) * np.log(p_obs / p_ref)))


DRIFT_UNIT_TESTS = ("drift_test.yml", "output_drift_test.yml")


@pytest.mark.parametrize("name", DRIFT_UNIT_TESTS)
def test_drift_unit_test_expects_the_psi_numpy_computes(name: str) -> None:
    """The values a drift unit test asserts are recomputed here from its input series."""
    spec = yaml.safe_load((REPO / "deploy/prometheus/tests" / name).read_text())
    (test,) = spec["tests"]
    counts: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
    reference: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
    for item in test["input_series"]:
        series_name, labels = _series(item["series"])
        values = _expand(item["values"])
        key, bin_label = _psi_key(labels), labels["bin"]
        if series_name == "model_drift_observations_total":  # increase over the hour to 60m
            key_counts = counts.setdefault(key, {})
            key_counts[bin_label] = key_counts.get(bin_label, 0.0) + values[60] - values[0]
        elif series_name == "model_drift_reference_ratio":
            key_ref = reference.setdefault(key, {})
            key_ref[bin_label] = max(key_ref.get(bin_label, 0.0), values[60])
    expected = {}
    for case in test["promql_expr_test"]:
        if case["expr"].startswith("round(model:drift_psi:window1h"):
            for sample in case["exp_samples"]:
                expected[_psi_key(_series(sample["labels"])[1])] = sample["value"]
    computed = {}
    for key, ref in reference.items():
        bins = sorted(ref)
        observed = np.array([counts.get(key, {}).get(b, 0.0) for b in bins])
        computed[key] = round(_psi(observed, np.array([ref[b] for b in bins])), 4)
    assert computed == expected


def test_output_drift_unit_test_covers_a_regressors_prediction() -> None:
    """The prediction's drift pages through the same alert as the inputs' (one rule for every
    feature, no feature filter), and a unit test shows it for a regressor's binned values."""
    (drift,) = [alert for alert in _alerts() if alert["alert"] == "LucidserveModelDrift"]
    assert "feature" not in _matched_labels(drift["expr"])
    spec = yaml.safe_load((REPO / "deploy/prometheus/tests/output_drift_test.yml").read_text())
    (test,) = spec["tests"]
    bins = {_series(item["series"])[1]["bin"] for item in test["input_series"]}
    assert {"underflow", "overflow", "missing"} <= bins  # numeric bins: a regressor's value
    fired = [
        alert
        for case in test["alert_rule_test"]
        for alert in case.get("exp_alerts", [])
        if case["alertname"] == "LucidserveModelDrift"
    ]
    assert [a["exp_labels"]["feature"] for a in fired] == ["__prediction__"]


def _psi_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """What the fleet PSI is per: every label but the bin and the scraped instance."""
    return tuple(sorted((k, v) for k, v in labels.items() if k not in {"bin", "instance"}))


@pytest.fixture(scope="module")
def replica(iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One replica of the service with two workers (their drift counters pool in /metrics)."""
    log = tmp_path_factory.mktemp("drift-replica") / "service.log"
    service = start_service(iris_bundle, log, workers=2, env={"LUCIDSERVE_DRIFT_MIN_SAMPLES": "50"})
    yield service
    service.stop()


@pytest.mark.slow
def test_fleet_psi_rule_equals_the_psi_the_service_computes(
    replica: Service, tmp_path: Path
) -> None:
    """600 iris rows with petal_length shifted by 1 cm: the rule over the replica's counters must
    reproduce the PSI gauges the replica computes itself."""
    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed (scripts/system-packages.txt; make system-deps)")
    prometheus = start_prometheus(
        [f"127.0.0.1:{replica.metrics_port}"], tmp_path, rule_files=[RULES]
    )
    try:
        prometheus.wait_for_series('up{job="lucidserve"} == 1')
        rows = as_samples(iris_rows(600, seed=11, shift={"petal_length": 1.0}))
        for start in range(0, len(rows), 3):
            response = replica.client.post("/v1/predict", json={"samples": rows[start : start + 3]})
            assert response.status_code == 200
        # Once a scrape after the last request reached the rules, both sides see the same counts.
        fleet = wait_until(
            lambda: _agreeing(prometheus), timeout=20, what="fleet PSI = service PSI"
        )
    finally:
        prometheus.stop()
    assert set(fleet) >= {"sepal_length", "sepal_width", "petal_length", "petal_width"}
    assert fleet["petal_length"] > 0.25  # the shifted feature drifted
    assert fleet["sepal_width"] < 0.1  # the others did not


def _agreeing(prometheus: Prometheus) -> dict[str, float] | None:
    fleet = {
        row["metric"]["feature"]: float(row["value"][1])
        for row in prometheus.query('model:drift_psi:window1h{job="lucidserve"}')
    }
    service = {
        row["metric"]["feature"]: float(row["value"][1])
        for row in prometheus.query('max by (feature) (model_drift_psi{job="lucidserve"})')
    }
    if not fleet or fleet.keys() != service.keys():
        return None
    if not all(math.isclose(fleet[f], service[f], rel_tol=1e-9) for f in fleet):
        return None
    return fleet


def test_every_recording_rule_name_is_level_metric_operations() -> None:
    for name in recorded_names(load_rules()):
        assert re.fullmatch(r"[a-z_]+:[a-z_0-9]+:[a-z_0-9]+", name), name


# --- helpers -----------------------------------------------------------------------------------


def _thresholds(expr: str) -> list[float]:
    """The constant right-hand sides of the `>` comparisons in an expression."""
    found: list[float] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.BinaryExpr) and str(node.op) == ">":
            found.append(_constant(node.rhs))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def _constant(node: promql_parser.Expr) -> float:
    """The value of a constant expression (numbers, parentheses, + - * /)."""
    if isinstance(node, promql_parser.NumberLiteral):
        return float(node.val)
    if isinstance(node, promql_parser.ParenExpr):
        return _constant(node.expr)
    assert isinstance(node, promql_parser.BinaryExpr), f"not a constant: {node}"
    operations = {
        "+": operator.add,
        "-": operator.sub,
        "*": operator.mul,
        "/": operator.truediv,
    }
    return float(operations[str(node.op)](_constant(node.lhs), _constant(node.rhs)))


def _matched_labels(expr: str) -> set[str]:
    """The labels any selector of an expression filters on."""
    found: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.update(m.name for m in node.matchers.matchers)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def _names(expr: str) -> set[str]:
    found: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def _series(text: str) -> tuple[str, dict[str, str]]:
    """`name{a="1", b="2"}` -> ("name", {"a": "1", "b": "2"})."""
    match = re.fullmatch(r"\s*([\w:]*)\{(.*)\}\s*", text)
    assert match, text
    return match[1], dict(re.findall(r'(\w+)="([^"]*)"', match[2]))


def _expand(values: str) -> list[float]:
    """promtool's series notation, the `a+bxn` terms these files use: a, a+b, ..., a+n*b."""
    expanded: list[float] = []
    for term in values.split():
        match = re.fullmatch(r"(-?[\d.]+)([+-][\d.]+)x(\d+)", term)
        if match is None:
            expanded.append(float(term))
            continue
        start, step, count = float(match[1]), float(match[2]), int(match[3])
        expanded.extend(start + i * step for i in range(count + 1))
    return expanded
