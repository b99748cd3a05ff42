"""The Model dashboard: inference, predictions (a classifier's or a regressor's), output drift and
input drift of the served model.

A `task` variable (model_info's `task` label) selects classifiers, regressors or both; each
prediction row joins its queries to model_info of its task, so it shows only models of that task.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard

from .layout import PanelBuilder, Section, build_dashboard, label_values
from .objectives import Objectives, milliseconds
from .panels import Query, Step, heatmap, info_table, stat, timeseries
from .promql import INPUTS, MODEL, PREDICTION, mean, of_task, quantile, rate, summed

UID = "lucidserve-model"
PSI_STEPS = [Step(None, "green"), Step(0.1, "orange"), Step(0.25, "red")]
CLASSIFICATION, REGRESSION = "classification", "regression"
VALUE = "model_prediction_value"  # a regressor's predicted values (histogram)


def model_dashboard(objectives: Objectives) -> dashboard.Dashboard:
    """Inference, queueing and batching, predictions, shedding, output and input drift."""
    return build_dashboard(
        UID,
        "lucidserve / Model",
        "What the model does: inference time, queueing and batching, the predictions it makes "
        "(a classifier's labels and confidence, a regressor's values), load it sheds, and how "
        "far live predictions and inputs drift from the training data.",
        [
            Section(
                "Inference",
                [
                    _inference_latency(objectives),
                    _queue_time(),
                    _batch_size(),
                    _shed_requests(),
                    _queue_depth(),
                    _inference_errors(),
                ],
            ),
            Section("Predictions: classifiers", [_prediction_share(), _confidence()]),
            Section("Predictions: regressors", [_value_quantiles(), _value_distribution()]),
            Section("Output drift", [_prediction_psi(), _prediction_bins(), _model_info()]),
            Section(
                "Input drift",
                [
                    _fleet_psi(),
                    _replica_psi(),
                    _pvalues(),
                    _window_observations(),
                    _insufficient_data(),
                ],
            ),
        ],
        extra_variables=[_task_variable()],
    )


def _task_variable() -> dashboard_builders.QueryVariable:
    return label_values(
        "task",
        "Task",
        "What the selected models do (model_info's task): classification, regression, or both. "
        "The prediction rows show the models of their own task.",
        'label_values(model_info{namespace=~"$namespace", job=~"$job", model_name=~"$model"}, '
        "task)",
    )


def _inference_latency(objectives: Objectives) -> PanelBuilder:
    def q(value: float) -> str:
        return quantile(value, "model_inference_duration_seconds", MODEL)

    return timeseries(
        "Inference latency p50 / p90 / p99",
        "Time the estimator spends in predict per batch, interpolated from the histogram. "
        f"The alert fires when p99 stays above {milliseconds(objectives.latency_threshold)} "
        "(dashed line, the request latency objective) for 10 minutes.",
        "s",
        [Query(q(0.5), "p50"), Query(q(0.9), "p90"), Query(q(0.99), "p99", exemplar=True)],
        width=6,
        thresholds=[Step(None, "green"), Step(objectives.latency_threshold, "red")],
        minimum=0,
    )


def _queue_time() -> PanelBuilder:
    def q(value: float) -> str:
        return quantile(value, "model_queue_duration_seconds", MODEL)

    return timeseries(
        "Queue time p50 / p99",
        "Time a request waits for the inference worker before its batch runs (with batching "
        "on, part of this is the deliberate wait to fill a batch).",
        "s",
        [Query(q(0.5), "p50"), Query(q(0.99), "p99")],
        width=6,
        minimum=0,
    )


def _batch_size() -> PanelBuilder:
    return timeseries(
        "Batch size",
        "Rows per call to the estimator: the mean and the 90th percentile. Larger batches "
        "amortise the per-call overhead; a mean near the configured maximum means the batcher "
        "is saturated.",
        "short",
        [
            Query(mean("model_batch_rows", MODEL), "mean"),
            Query(quantile(0.9, "model_batch_rows", MODEL), "p90"),
        ],
        width=6,
        axis_label="rows",
        minimum=0,
    )


def _shed_requests() -> PanelBuilder:
    return timeseries(
        "Shed requests",
        "Requests refused with 503 and Retry-After because the inference queue was full. "
        "Sustained shedding for 10 minutes raises LucidserveLoadShedding.",
        "reqps",
        [
            Query(
                summed(rate("model_requests_shed_total", MODEL), "model_name", "model_version")
                + " or vector(0)",
                "{{model_name}} {{model_version}}",
            )
        ],
        width=6,
        minimum=0,
    )


def _queue_depth() -> PanelBuilder:
    return timeseries(
        "Queue depth",
        "Rows waiting for inference at scrape time, summed over processes and replicas. It "
        "grows before requests are shed (at LUCIDSERVE_QUEUE_MAX_ROWS).",
        "short",
        [Query(summed(f"model_queue_rows{{{MODEL}}}", "model_name"), "{{model_name}}")],
        axis_label="rows",
        minimum=0,
    )


def _inference_errors() -> PanelBuilder:
    return timeseries(
        "Inference errors",
        "Calls to the estimator that raised an exception, per second; each one answers its "
        "requests with a 500.",
        "ops",
        [
            Query(
                summed(rate("model_inference_errors_total", MODEL), "model_name") + " or vector(0)",
                "{{model_name}}",
            )
        ],
        minimum=0,
    )


def _prediction_share() -> PanelBuilder:
    predictions = of_task(rate("model_predictions_total", MODEL), CLASSIFICATION)
    by_label = summed(predictions, "label")
    total = summed(predictions)
    return timeseries(
        "Predictions by label (share)",
        "Share of each predicted label among a classifier's predictions over time. A shift here "
        "without a change in inputs points at the model; with one, at the traffic.",
        "percentunit",
        [Query(f"{by_label} / ignoring (label) group_left () {total}", "{{label}}")],
        stack_percent=True,
    )


def _confidence() -> PanelBuilder:
    buckets = of_task(rate("model_prediction_confidence_bucket", MODEL), CLASSIFICATION)
    return heatmap(
        "Prediction confidence",
        "Distribution of the probability of a classifier's predicted label. Mass moving towards "
        "low confidence means the model sees inputs unlike its training data.",
        "percentunit",
        Query(summed(buckets, "le"), "{{le}}"),
        cell_unit="short",
    )


def _value_quantiles() -> PanelBuilder:
    buckets = summed(of_task(rate(f"{VALUE}_bucket", MODEL), REGRESSION), "model_name", "le")
    total = summed(of_task(rate(f"{VALUE}_sum", MODEL), REGRESSION), "model_name")
    count = summed(of_task(rate(f"{VALUE}_count", MODEL), REGRESSION), "model_name")

    def q(value: float, legend: str) -> Query:
        return Query(f"histogram_quantile({value}, {buckets})", f"{{{{model_name}}}} {legend}")

    return timeseries(
        "Predicted value p10 / p50 / p90 and mean",
        "A regressor's predicted values (model_prediction_value), interpolated within its "
        "buckets, which are the reference predictions' drift bins (near their deciles): a "
        "quantile moving away from its usual level is the output drifting.",
        "none",
        [
            q(0.1, "p10"),
            q(0.5, "p50"),
            q(0.9, "p90"),
            Query(f"{total} / {count}", "{{model_name}} mean"),
        ],
        axis_label="predicted value",
    )


def _value_distribution() -> PanelBuilder:
    buckets = of_task(rate(f"{VALUE}_bucket", MODEL), REGRESSION)
    return heatmap(
        "Predicted value distribution",
        "Predictions per second in each bucket of a regressor's predicted value over time. The "
        "buckets are the reference predictions' bin edges: with reference-like traffic each "
        "inner bucket gets a similar share.",
        "none",
        Query(summed(buckets, "le"), "{{le}}"),
        cell_unit="short",
    )


def _prediction_psi() -> PanelBuilder:
    return timeseries(
        "Drift PSI of the prediction (output drift)",
        "Population Stability Index of the model's predictions (feature __prediction__: the "
        "predicted class of a classifier, the binned value of a regressor) against the "
        "reference predictions: fleet-wide over the last hour (model:drift_psi:window1h, what "
        "LucidserveModelDrift alerts on above 0.25) and the worst replica's own window.",
        "none",
        [
            Query(
                f"max by (model_name) (model:drift_psi:window1h{{{MODEL}, {PREDICTION}}})",
                "{{model_name}} fleet, last hour",
            ),
            Query(
                f"max by (model_name) (model_drift_psi{{{MODEL}, {PREDICTION}}})",
                "{{model_name}} worst replica",
            ),
        ],
        width=9,
        thresholds=PSI_STEPS,
        minimum=0,
    )


def _prediction_bins() -> PanelBuilder:
    observations = rate("model_drift_observations_total", MODEL, PREDICTION)
    return timeseries(
        "Predictions per drift bin (share)",
        "Share of live predictions in each drift bin of the prediction: a classifier's classes, "
        "or a regressor's value bins (underflow, the reference's decile bins, overflow). "
        "GET /v1/drift on a pod lists the reference share of each bin beside it.",
        "percentunit",
        [Query(summed(observations, "bin"), "{{bin}}")],
        width=9,
        stack_percent=True,
    )


def _model_info() -> PanelBuilder:
    return info_table(
        "Model and reference version",
        "The model each job serves (model_info): name, version, task, the scikit-learn it was "
        "built with, and reference_version, the drift reference live traffic is compared with.",
        Query(f"model_info{{{MODEL}}}"),
        width=6,
        height=8,
    )


def _fleet_psi() -> PanelBuilder:
    return timeseries(
        "Drift PSI per feature (fleet, last hour)",
        "Population Stability Index of each input feature "
        "over the last hour, from the bin counters of all replicas (recording rule "
        "model:drift_psi:window1h). Below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 "
        "drift: LucidserveModelDrift fires after 30 minutes with enough observations.",
        "none",
        [Query(f"max by (feature) (model:drift_psi:window1h{{{MODEL}, {INPUTS}}})", "{{feature}}")],
        width=12,
        thresholds=PSI_STEPS,
        minimum=0,
    )


def _replica_psi() -> PanelBuilder:
    return timeseries(
        "Drift PSI per feature (worst replica, service window)",
        "PSI each replica computes itself over its own drift window (model_drift_psi), the "
        "highest across replicas. It reacts to one replica's traffic; the fleet panel is what "
        "alerts.",
        "none",
        [Query(f"max by (feature) (model_drift_psi{{{MODEL}, {INPUTS}}})", "{{feature}}")],
        width=12,
        thresholds=PSI_STEPS,
        minimum=0,
    )


def _pvalues() -> PanelBuilder:
    return timeseries(
        "Drift test p-values",
        "p-value of each feature's chi-square goodness-of-fit test against the reference "
        "proportions (lowest across replicas). Small values (below the dashed 0.01) say the live "
        "distribution differs; "
        "with much traffic even a harmless shift is significant, so read them with the PSI.",
        "none",
        [Query(f"min by (feature) (model_drift_pvalue{{{MODEL}, {INPUTS}}})", "{{feature}}")],
        width=8,
        thresholds=[Step(None, "red"), Step(0.01, "green")],
        minimum=0,
    )


def _window_observations() -> PanelBuilder:
    return timeseries(
        "Observations in the drift window",
        "Observations each feature's drift statistics rest on: per replica window summed over "
        "replicas, and the fleet's last hour (the alert needs at least 500).",
        "short",
        [
            Query(
                f"sum by (feature) (model_drift_window_observations{{{MODEL}, {INPUTS}}})",
                "{{feature}} (replica windows)",
            ),
            Query(
                f"sum by (feature) (model:drift_observations:window1h{{{MODEL}, {INPUTS}}})",
                "{{feature}} (fleet, 1h)",
            ),
        ],
        width=10,
        minimum=0,
    )


def _insufficient_data() -> PanelBuilder:
    return stat(
        "Features short of data",
        "Features whose drift window holds fewer observations than the minimum "
        "(model_drift_insufficient_data) on at least one replica: their PSI and p-value are "
        "not meaningful there yet.",
        "short",
        [
            Query(
                "count(max by (feature) "
                f"(model_drift_insufficient_data{{{MODEL}, {INPUTS}}}) == 1) or vector(0)"
            )
        ],
        thresholds=[Step(None, "green"), Step(1, "orange")],
        width=6,
        height=8,
        decimals=0,
    )
