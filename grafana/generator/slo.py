"""The SLO dashboard: the availability and latency SLOs, their error budgets and burn rates.

Everything here reads the recording rules of deploy/prometheus/rules.yml, objectives included
(lucidserve:slo_objective:ratio), so the dashboard and the alerts cannot disagree on a number.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard

from .layout import PanelBuilder, Section, build_dashboard
from .objectives import OBJECTIVE, Objectives, milliseconds, percent
from .panels import Query, Step, stat, timeseries
from .promql import SERVICE

UID = "lucidserve-slo"
WINDOWS = ("5m", "30m", "1h", "6h", "3d")
# Burn rates the alerts page (14.4x, 6x) or open a ticket (1x) on.
BURN_STEPS = [Step(None, "green"), Step(1, "yellow"), Step(6, "orange"), Step(14.4, "red")]
BUDGET_STEPS = [Step(None, "red"), Step(0, "orange"), Step(0.25, "green")]
TIMES = "suffix:x"  # Grafana's custom-unit syntax: a plain number followed by "x"

ERRORS = "namespace_job:http_server_request_errors:ratio_rate"
FAST = "namespace_job:http_server_requests_fast:ratio_rate"


def slo_dashboard(objectives: Objectives) -> dashboard.Dashboard:
    """SLIs against their objectives, 30-day error budget left, burn rate at each window."""
    slos = _Slos(objectives)
    return build_dashboard(
        UID,
        "lucidserve / SLO",
        f"{slos.title('availability')} and {slos.title('latency')} over 30 days: the SLIs, the "
        "error budget left and how fast it burns at the windows the multi-window, "
        "multi-burn-rate alerts use.",
        [
            Section(
                f"Availability: {slos.title('availability')}",
                [
                    slos.sli_30d("availability"),
                    slos.budget_left("availability"),
                    slos.burn_rates("availability"),
                ],
            ),
            Section(
                f"Latency: {slos.title('latency')}",
                [
                    slos.sli_30d("latency"),
                    slos.budget_left("latency"),
                    slos.burn_rates("latency"),
                ],
            ),
            Section("Service level indicators", [slos.sli_over_time()]),
        ],
    )


class _Slos:
    def __init__(self, objectives: Objectives) -> None:
        self.objectives = objectives

    def title(self, slo: str) -> str:
        share = percent(self.objectives.objective(slo))
        return f"{share} of API requests {self.good(slo)}"

    def good(self, slo: str) -> str:
        if slo == "availability":
            return "without a 5xx status"
        return f"within {milliseconds(self.objectives.latency_threshold)}"

    def sli_30d(self, slo: str) -> PanelBuilder:
        return stat(
            f"{slo.capitalize()} over 30 days",
            f"Share of API requests (routes /v1/...) {self.good(slo)} over the last 30 days (or "
            "since the recording rules started), per job. Green at or above the objective of "
            f"{percent(self.objectives.objective(slo))}.",
            "percentunit",
            [Query(_good_ratio(slo, "30d"), "{{namespace}}/{{job}}")],
            thresholds=[Step(None, "red"), Step(self.objectives.objective(slo), "green")],
            decimals=3,
        )

    def budget_left(self, slo: str) -> PanelBuilder:
        spent = f"{_bad_ratio(slo, '30d')} / {_budget(slo)}"
        return stat(
            f"{slo.capitalize()} error budget left",
            "Share of the 30-day error budget not yet spent: 100% with no bad requests, 0% when "
            f"the bad ratio reaches {percent(self.objectives.budget(slo))} (1 - objective), "
            "negative once the SLO is missed.",
            "percentunit",
            [Query(f"1 - ({spent})", "{{namespace}}/{{job}}")],
            thresholds=BUDGET_STEPS,
            decimals=1,
        )

    def burn_rates(self, slo: str) -> PanelBuilder:
        queries = [
            Query(f"{_bad_ratio(slo, window)} / {_budget(slo)}", f"{window} {{{{job}}}}")
            for window in WINDOWS
        ]
        return timeseries(
            f"{slo.capitalize()} burn rate",
            "How many times faster than allowed the error budget is spent, at each alert "
            "window: 1x spends it exactly in 30 days. Pages fire when both 1h and 5m exceed "
            "14.4x or both 6h and 30m exceed 6x; a ticket when both 3d and 6h exceed 1x "
            "(dashed lines).",
            TIMES,
            queries,
            width=12,
            thresholds=BURN_STEPS,
            minimum=0,
        )

    def sli_over_time(self) -> PanelBuilder:
        return timeseries(
            "SLIs over the last 5 minutes",
            f"Availability ({self.good('availability')}) and latency ({self.good('latency')}) "
            "ratios of API requests over 5-minute windows, with the objectives as recorded for "
            "the alerts.",
            "percentunit",
            [
                Query(_good_ratio("availability", "5m"), "availability {{job}}"),
                Query(_good_ratio("latency", "5m"), "latency {{job}}"),
                Query(_objective("availability"), "availability objective"),
                Query(_objective("latency"), "latency objective"),
            ],
            width=24,
        )


def _objective(slo: str) -> str:
    return f'{OBJECTIVE}{{slo="{slo}"}}'


def _budget(slo: str) -> str:
    """The allowed bad ratio, 1 - objective, matched onto every namespace and job."""
    return f"on () group_left () (1 - {_objective(slo)})"


def _good_ratio(slo: str, window: str) -> str:
    if slo == "availability":
        return f"1 - {ERRORS}{window}{{{SERVICE}}}"
    return f"{FAST}{window}{{{SERVICE}}}"


def _bad_ratio(slo: str, window: str) -> str:
    if slo == "availability":
        return f"{ERRORS}{window}{{{SERVICE}}}"
    return f"(1 - {FAST}{window}{{{SERVICE}}})"
