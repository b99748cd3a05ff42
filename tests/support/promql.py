"""Reading PromQL out of dashboards and rules, and checking it with promql-parser's AST."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from tests.support.processes import REPO

DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
RULES = REPO / "deploy" / "prometheus" / "rules.yml"

# Counters by the naming conventions Prometheus clients enforce: counters end in _total,
# histograms expose cumulative _bucket, _count and _sum counters.
COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
COUNTER_FUNCTIONS = {"rate", "increase"}
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True)
class DashboardQuery:
    """One PromQL expression of a dashboard: a panel target or a variable's query."""

    dashboard: str
    where: str  # panel title, or "variable <name>"
    expr: str
    exemplar: bool = False

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.where}: {self.expr}"


def load_dashboard(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def panels(board: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel except rows, including panels nested in collapsed rows."""
    for panel in board.get("panels", []):
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_queries(path: Path) -> list[DashboardQuery]:
    """Panel targets and the selectors inside `label_values(...)` variable queries."""
    board = load_dashboard(path)
    name = path.stem
    found = [
        DashboardQuery(name, panel["title"], target["expr"], bool(target.get("exemplar")))
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]
    for variable in board.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            match = LABEL_VALUES.match(str(variable["query"]))
            if match is None:
                raise ValueError(f"{name}: variable {variable['name']}: not label_values(...)")
            found.append(DashboardQuery(name, f"variable {variable['name']}", match["selector"]))
    return found


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables (`$x`, `${x}`, `[[x]]`) named in `values`; leave others alone
    (so PromQL's own `${1}` in label_replace survives, as it does in Grafana)."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return values.get(name, match.group(0))

    return GRAFANA_VARIABLE.sub(replace, expr)


def load_rules() -> dict[str, Any]:
    return dict(yaml.safe_load(RULES.read_text()))


def rules(rules_file: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rules_file["groups"] for rule in group["rules"]]


def recorded_names(rules_file: Mapping[str, Any]) -> set[str]:
    return {rule["record"] for rule in rules(rules_file) if "record" in rule}


def metric_names(expr: str) -> set[str]:
    """Names of all metrics an expression selects."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(_selector_name(node))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def counter_misuses(expr: str) -> list[str]:
    """Counters (by name) selected anywhere but directly inside rate() or increase()."""
    misuses: list[str] = []
    ancestors: list[promql_parser.Expr] = []

    def enter(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            name = _selector_name(node)
            if name.endswith(COUNTER_SUFFIXES) and not _inside_counter_function(ancestors):
                misuses.append(name)
        ancestors.append(node)

    def leave(node: promql_parser.Expr) -> None:
        ancestors.pop()

    promql_parser.walk(promql_parser.parse(expr), enter, leave)
    return misuses


def range_durations(expr: str) -> list[timedelta]:
    """The range of every range selector and subquery in an expression."""
    durations: list[timedelta] = []

    def visit(node: promql_parser.Expr) -> None:
        ranged = isinstance(node, promql_parser.MatrixSelector | promql_parser.SubqueryExpr)
        if ranged and node.range is not None:
            durations.append(node.range)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return durations


def _inside_counter_function(ancestors: list[promql_parser.Expr]) -> bool:
    if len(ancestors) < 2 or not isinstance(ancestors[-1], promql_parser.MatrixSelector):
        return False
    call = ancestors[-2]
    return isinstance(call, promql_parser.Call) and call.func.name in COUNTER_FUNCTIONS


def _selector_name(node: promql_parser.VectorSelector) -> str:
    if node.name:
        return node.name
    for matcher in node.matchers.matchers:
        if matcher.name == "__name__":
            return matcher.value
    raise ValueError(f"selector without a metric name: {node}")
