"""The PromQL vocabulary the dashboards share: label selectors and query shapes.

Every range is `$__rate_interval`, so a panel stays correct whatever the scrape interval and the
zoom; fixed windows live only in the recording rules of deploy/prometheus/rules.yml.
"""

from __future__ import annotations

RATE_INTERVAL = "$__rate_interval"

# The dashboard variables, as label matchers.
SERVICE = 'namespace=~"$namespace", job=~"$job"'
MODEL = f'{SERVICE}, model_name=~"$model"'
# The API routes the SLOs cover (probes and /metrics are not the product).
API_ROUTES = 'http_route=~"/v1/.*"'
# The drift statistics' name for the model's output, tracked like a feature.
PREDICTION = 'feature="__prediction__"'
INPUTS = 'feature!="__prediction__"'
# The labels that identify one served model on every model_* series (and on model_info).
MODEL_IDENTITY = "namespace, job, model_name, model_version"


def selector(*matchers: str) -> str:
    """`{a, b}` from matcher strings."""
    return "{" + ", ".join(m for m in matchers if m) + "}"


def rate(metric: str, *matchers: str) -> str:
    """Per-second rate of a counter over `$__rate_interval`."""
    return f"rate({metric}{selector(*matchers)}[{RATE_INTERVAL}])"


def increase(metric: str, *matchers: str) -> str:
    """Increase of a counter over `$__rate_interval`."""
    return f"increase({metric}{selector(*matchers)}[{RATE_INTERVAL}])"


def summed(expr: str, *by: str) -> str:
    """`sum by (labels) (expr)`, or a plain `sum` without labels."""
    return f"sum by ({', '.join(by)}) ({expr})" if by else f"sum({expr})"


def quantile(q: float, histogram: str, *matchers: str, by: tuple[str, ...] = ()) -> str:
    """The q-quantile of a histogram's recent observations, per `by` labels."""
    buckets = summed(rate(f"{histogram}_bucket", *matchers), *by, "le")
    return f"histogram_quantile({q}, {buckets})"


def mean(histogram: str, *matchers: str, by: tuple[str, ...] = ()) -> str:
    """The mean of a histogram's recent observations: rate of the sum over rate of the count."""
    total = summed(rate(f"{histogram}_sum", *matchers), *by)
    count = summed(rate(f"{histogram}_count", *matchers), *by)
    return f"{total} / {count}"


def of_task(expr: str, task: str) -> str:
    """`expr`'s series of the models whose model_info says `task`, when the dashboard's `task`
    variable selects it: a classifier's panels stay empty for a regressor and the other way round.

    The join is made before any aggregation, on the labels every model series carries.
    """
    info = f'model_info{{{MODEL}, task="{task}", task=~"$task"}}'
    return f"({expr} and on ({MODEL_IDENTITY}) {info})"


def for_service_pods(expr: str) -> str:
    """Restrict a kube-state-metrics or cAdvisor series to the pods of the selected jobs.

    Those exporters do not know the scrape job; the `up` series of the service's own targets carry
    `namespace` and `pod` (as a ServiceMonitor sets them), so a set intersection on those selects
    the service's pods.
    """
    return f"({expr} and on (namespace, pod) up{selector(SERVICE)})"
