"""Panel constructors: every panel gets a title, a description, a unit and the `${datasource}`.

Taking those as required arguments is what keeps "a panel without a unit or a description" from
being writable at all; tests/test_dashboards.py checks the JSON as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import heatmap as heatmap_builders
from grafana_foundation_sdk.builders import prometheus as prometheus_builders
from grafana_foundation_sdk.builders import stat as stat_builders
from grafana_foundation_sdk.builders import table as table_builders
from grafana_foundation_sdk.builders import timeseries as timeseries_builders
from grafana_foundation_sdk.models import common, dashboard, prometheus

# The data source is a dashboard variable, never a uid baked into the JSON.
DATASOURCE = dashboard.DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel."""

    expr: str
    legend: str = ""
    exemplar: bool = False  # ask Prometheus for exemplars (trace ids) along with the series


@dataclass(frozen=True)
class Step:
    """A threshold: from `value` upwards the panel shows `color` (None: the base step)."""

    value: float | None
    color: str


P = TypeVar("P")


def timeseries(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 12,
    height: int = 8,
    thresholds: Sequence[Step] = (),
    stack_percent: bool = False,
    bars: bool = False,
    axis_label: str = "",
    minimum: float | None = None,
) -> timeseries_builders.Panel:
    """A time series panel; thresholds, when given, are drawn as dashed lines."""
    panel = (
        _framed(timeseries_builders.Panel(), title, description, unit, width, height)
        .targets(_targets(queries))
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if axis_label:
        panel = panel.axis_label(axis_label)
    if minimum is not None:
        panel = panel.min(minimum)
    if thresholds:
        panel = panel.thresholds(_thresholds(thresholds)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.DASHED)
        )
    if stack_percent:
        panel = (
            panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.PERCENT))
            .fill_opacity(70)
            .min(0)
            .max(1)
        )
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
    return panel


def heatmap(
    title: str,
    description: str,
    unit: str,
    query: Query,
    *,
    cell_unit: str = "reqps",
    width: int = 12,
    height: int = 8,
) -> heatmap_builders.Panel:
    """A heatmap of a Prometheus histogram's buckets (query in `heatmap` format); `unit` is the
    bucket axis, `cell_unit` the rate counted in each cell."""
    return (
        _framed(heatmap_builders.Panel(), title, description, unit, width, height)
        .with_target(_target(query, "A").format(prometheus.PromQueryFormat.HEATMAP))
        .calculate(False)
        .y_axis(heatmap_builders.YAxisConfig().unit(unit))
        .cell_values(heatmap_builders.CellValues().unit(cell_unit))
        .show_tooltip()
        .show_y_histogram()
        .exemplars_color("rgba(255,0,255,0.7)")
    )


def stat(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    thresholds: Sequence[Step],
    width: int = 6,
    height: int = 5,
    decimals: int | None = None,
) -> stat_builders.Panel:
    """A single value (the last one in the time range), coloured by thresholds."""
    panel = (
        _framed(stat_builders.Panel(), title, description, unit, width, height)
        .targets(_targets(queries))
        .thresholds(_thresholds(thresholds))
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )
    return panel.decimals(decimals) if decimals is not None else panel


def info_table(
    title: str,
    description: str,
    query: Query,
    *,
    width: int = 12,
    height: int = 5,
) -> table_builders.Panel:
    """The labels of an info-style series (value 1) as a table, one row per series."""
    exclude = {"Time": True, "Value": True, "__name__": True}
    return (
        _framed(table_builders.Panel(), title, description, "string", width, height)
        .with_target(_target(query, "A").instant().format(prometheus.PromQueryFormat.TABLE))
        .with_transformation(
            dashboard.DataTransformerConfig(id_val="organize", options={"excludeByName": exclude})
        )
    )


def _framed(panel: P, title: str, description: str, unit: str, width: int, height: int) -> P:
    """What every panel sets alike: title, description, unit, the datasource variable, its size."""
    framed: Any = panel
    return cast(
        P,
        framed.title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(width)
        .height(height),
    )


def _targets(queries: Sequence[Query]) -> list[prometheus_builders.Dataquery]:
    return [_target(query, chr(ord("A") + i)) for i, query in enumerate(queries)]


def _target(query: Query, ref_id: str) -> prometheus_builders.Dataquery:
    target = (
        prometheus_builders.Dataquery()
        .datasource(DATASOURCE)
        .expr(query.expr)
        .ref_id(ref_id)
        .range()
        .exemplar(query.exemplar)
    )
    return target.legend_format(query.legend) if query.legend else target


def _thresholds(steps: Sequence[Step]) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard.ThresholdsMode.ABSOLUTE)
        .steps([dashboard.Threshold(value=step.value, color=step.color) for step in steps])
    )
