"""The Service dashboard: traffic, errors, latency and the pods that serve them."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard

from .layout import PanelBuilder, Section, build_dashboard
from .objectives import Objectives, milliseconds, percent
from .panels import Query, Step, heatmap, timeseries
from .promql import API_ROUTES, SERVICE, for_service_pods, increase, quantile, rate, summed

UID = "lucidserve-service"
REQUESTS = "http_server_request_duration_seconds"
EXTERNAL_POD_MATCHERS = 'namespace=~"$namespace", container!="", container!="POD"'


def service_dashboard(objectives: Objectives) -> dashboard.Dashboard:
    """Request rate, error ratio, latency (with exemplars), active requests, pods and resources."""
    return build_dashboard(
        UID,
        "lucidserve / Service",
        "HTTP traffic, errors and latency of lucidserve, and the health and resources of its pods.",
        [
            Section("Traffic", [_request_rate(), _error_ratio(objectives), _active_requests()]),
            Section(
                "Latency",
                [_latency_quantiles(objectives), _latency_heatmap(), _latency_by_route()],
            ),
            Section(
                "Pods",
                [_pods_up_and_ready(), _restarts(), _cpu(), _memory()],
            ),
            Section("Refused and lost work", [_refused(), _stalled(), _log_lines_dropped()]),
        ],
    )


def _request_rate() -> PanelBuilder:
    by_class = (
        f"label_replace({rate(f'{REQUESTS}_count', SERVICE)}, "
        '"status_class", "${1}xx", "http_response_status_code", "([0-9])..")'
    )
    return timeseries(
        "Request rate by route and status class",
        "Requests per second answered by the service, per route template (`unmatched` for paths "
        "no route knows) and status class (2xx, 4xx, 5xx).",
        "reqps",
        [Query(summed(by_class, "http_route", "status_class"), "{{http_route}} {{status_class}}")],
        width=10,
    )


def _error_ratio(objectives: Objectives) -> PanelBuilder:
    def share(status: str) -> str:
        failed = summed(rate(f"{REQUESTS}_count", SERVICE, API_ROUTES, status))
        total = summed(rate(f"{REQUESTS}_count", SERVICE, API_ROUTES))
        return f"({failed} or vector(0)) / {total}"

    return timeseries(
        "Error ratio",
        "Share of API requests (routes /v1/...) that failed: 5xx are the service's fault and "
        f"count against the availability SLO ({percent(objectives.availability)}, dashed line at "
        f"{percent(objectives.budget('availability'))}); 4xx are rejected client input.",
        "percentunit",
        [
            Query(share('http_response_status_code=~"5.."'), "5xx (server)"),
            Query(share('http_response_status_code=~"4.."'), "4xx (client)"),
        ],
        width=8,
        thresholds=[Step(None, "green"), Step(objectives.budget("availability"), "red")],
        minimum=0,
    )


def _active_requests() -> PanelBuilder:
    return timeseries(
        "Active requests",
        "Requests in flight at scrape time, summed over the service's processes, per HTTP method.",
        "short",
        [
            Query(
                summed(f"http_server_active_requests{{{SERVICE}}}", "http_request_method"),
                "{{http_request_method}}",
            )
        ],
        width=6,
        minimum=0,
    )


def _latency_quantiles(objectives: Objectives) -> PanelBuilder:
    def q(value: float) -> str:
        return quantile(value, REQUESTS, SERVICE, API_ROUTES)

    return timeseries(
        "API latency p50 / p90 / p99",
        "Server-side duration of API requests (routes /v1/...), interpolated from the histogram "
        f"buckets. The latency SLO asks {percent(objectives.latency)} of requests within "
        f"{milliseconds(objectives.latency_threshold)} (dashed line). Exemplars on p99 link to "
        "the traces of individual requests.",
        "s",
        [
            Query(q(0.5), "p50"),
            Query(q(0.9), "p90"),
            Query(q(0.99), "p99", exemplar=True),
        ],
        width=8,
        thresholds=[Step(None, "green"), Step(objectives.latency_threshold, "red")],
        minimum=0,
    )


def _latency_heatmap() -> PanelBuilder:
    return heatmap(
        "API latency distribution",
        "Requests per second in each duration bucket (routes /v1/...). The dots are exemplars: "
        "one sampled request each, with its trace id; click one to open the trace.",
        "s",
        Query(
            summed(rate(f"{REQUESTS}_bucket", SERVICE, API_ROUTES), "le"),
            "{{le}}",
            exemplar=True,
        ),
        width=8,
    )


def _latency_by_route() -> PanelBuilder:
    return timeseries(
        "p99 latency by route",
        "99th percentile of the server-side duration per route template, all routes included.",
        "s",
        [Query(quantile(0.99, REQUESTS, SERVICE, by=("http_route",)), "{{http_route}}")],
        width=8,
        minimum=0,
    )


def _pods_up_and_ready() -> PanelBuilder:
    kube_ready = 'kube_pod_status_ready{namespace=~"$namespace", condition="true"}'
    return timeseries(
        "Pods up and ready",
        "Targets Prometheus scrapes successfully (up), processes whose model is loaded and warm "
        "(model_ready), and pods Kubernetes counts ready (kube-state-metrics; empty outside "
        "Kubernetes).",
        "short",
        [
            Query(summed(f"up{{{SERVICE}}}"), "up"),
            Query(summed(f"max by (instance) (model_ready{{{SERVICE}}})"), "model ready"),
            Query(summed(for_service_pods(kube_ready)), "ready (Kubernetes)"),
        ],
        width=6,
        minimum=0,
    )


def _restarts() -> PanelBuilder:
    restarts = increase("kube_pod_container_status_restarts_total", 'namespace=~"$namespace"')
    return timeseries(
        "Container restarts",
        "Container restarts per pod in each interval (kube-state-metrics): crash loops, OOM kills "
        "and failed liveness probes show here.",
        "short",
        [Query(summed(for_service_pods(restarts), "pod"), "{{pod}}")],
        width=6,
        bars=True,
        minimum=0,
    )


def _cpu() -> PanelBuilder:
    usage = rate("container_cpu_usage_seconds_total", EXTERNAL_POD_MATCHERS)
    limit = 'kube_pod_container_resource_limits{namespace=~"$namespace", resource="cpu"}'
    return timeseries(
        "CPU used against limit",
        "CPU time used per pod (cAdvisor), in cores, with the pod's CPU limit "
        "(kube-state-metrics). Usage pinned at the limit means throttling: latency rises.",
        "short",
        [
            Query(summed(for_service_pods(usage), "pod"), "{{pod}} used"),
            Query(summed(for_service_pods(limit), "pod"), "{{pod}} limit"),
        ],
        width=6,
        axis_label="cores",
        minimum=0,
    )


def _memory() -> PanelBuilder:
    usage = f"container_memory_working_set_bytes{{{EXTERNAL_POD_MATCHERS}}}"
    limit = 'kube_pod_container_resource_limits{namespace=~"$namespace", resource="memory"}'
    return timeseries(
        "Memory used against limit",
        "Working set per pod (cAdvisor; what the OOM killer looks at) with the pod's memory limit "
        "(kube-state-metrics).",
        "bytes",
        [
            Query(summed(for_service_pods(usage), "pod"), "{{pod}} working set"),
            Query(summed(for_service_pods(limit), "pod"), "{{pod}} limit"),
        ],
        width=6,
        minimum=0,
    )


def _refused() -> PanelBuilder:
    return timeseries(
        "Requests shed and expired",
        "Requests refused with 503 because the inference queue was full (shed), and requests "
        "answered 504 because their deadline passed while queued (expired), per second.",
        "reqps",
        [
            Query(summed(rate("model_requests_shed_total", SERVICE)), "shed"),
            Query(summed(rate("model_requests_expired_total", SERVICE)), "expired"),
        ],
        width=8,
        minimum=0,
    )


def _stalled() -> PanelBuilder:
    return timeseries(
        "Inference stalled",
        "1 while a process's inference thread has made no progress with work waiting "
        "(INFERENCE_STALL_SECONDS): its /healthz fails and gunicorn replaces the worker.",
        "short",
        [Query(f"max by (instance) (model_inference_stalled{{{SERVICE}}})", "{{instance}}")],
        width=8,
        minimum=0,
    )


def _log_lines_dropped() -> PanelBuilder:
    return timeseries(
        "Log lines dropped",
        "Log lines per second dropped because stdout could not keep up (the bounded log queue was "
        "full): prediction lines missing from the log.",
        "short",
        [Query(summed(rate("log_records_dropped_total", SERVICE), "instance"), "{{instance}}")],
        width=8,
        minimum=0,
    )
