"""What every lucidserve dashboard shares: its variables, its links, and how panels are laid out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import heatmap, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cog
from grafana_foundation_sdk.models import dashboard

from .panels import DATASOURCE

TAG = "lucidserve"
PanelBuilder = timeseries.Panel | heatmap.Panel | stat.Panel | table.Panel


@dataclass(frozen=True)
class Section:
    """A row heading and the panels under it, laid out left to right, 24 columns a line."""

    title: str
    panels: Sequence[PanelBuilder]


def build_dashboard(
    uid: str,
    title: str,
    description: str,
    sections: Sequence[Section],
    extra_variables: Sequence[cog.Builder[dashboard.VariableModel]] = (),
) -> dashboard.Dashboard:
    """A dashboard with the shared variables (then its own) and links; panel ids are numbered
    in order."""
    builder = (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .readonly()
        .timezone("browser")
        .time("now-3h", "now")
        .refresh("30s")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .variables([*variables(), *extra_variables])
        .link(
            dashboard_builders.DashboardLink("lucidserve")
            .type(dashboard.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    panel_id = 0
    for section in sections:
        panel_id += 1
        builder = builder.with_row(dashboard_builders.Row(section.title).id(panel_id))
        for panel in section.panels:
            panel_id += 1
            builder = builder.with_panel(panel.id(panel_id))
    return builder.build()


def variables() -> list[cog.Builder[dashboard.VariableModel]]:
    """Data source, then namespace, job and model, each narrowing the next."""
    return [
        dashboard_builders.DatasourceVariable("datasource")
        .label("Data source")
        .description("The Prometheus that scrapes lucidserve.")
        .type("prometheus"),
        label_values(
            "namespace",
            "Namespace",
            "Kubernetes namespace (a static label in the local stack).",
            "label_values(model_info, namespace)",
        ),
        label_values(
            "job",
            "Job",
            "Prometheus scrape job of the service.",
            'label_values(model_info{namespace=~"$namespace"}, job)',
        ),
        label_values(
            "model",
            "Model",
            "Model name as served (model_info's model_name).",
            'label_values(model_info{namespace=~"$namespace", job=~"$job"}, model_name)',
        ),
    ]


def label_values(
    name: str, label: str, description: str, query: str
) -> dashboard_builders.QueryVariable:
    """A multi-value variable from `label_values(...)`, "All" by default, refreshed with the
    time range."""
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dashboard.VariableOption(selected=True, text="All", value="$__all"))
    )
