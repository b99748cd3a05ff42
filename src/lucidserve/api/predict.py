"""POST /v1/predict and /v1/predict/{label}: the request's path, in one direction.

body (api/intake.py: content type, size, deadline, schema) -> inference queue -> metrics,
prediction log lines -> orjson response.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from logging import INFO
from typing import Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from lucidserve.api.errors import ApiError, ErrorResponse
from lucidserve.api.intake import SampleIntake
from lucidserve.bundle.schema import LabelProbabilityResponse, PredictResponse
from lucidserve.inference.batcher import DeadlineExceeded, Outcome, Overloaded
from lucidserve.inference.predictor import BatchResult, RejectedInput
from lucidserve.observability.events import EventLogger
from lucidserve.observability.hashing import input_hasher
from lucidserve.observability.middleware import REQUEST_ID_KEY, STARTED_KEY
from lucidserve.observability.spans import record_request_spans
from lucidserve.runtime import Runtime

prediction_lines = EventLogger("lucidserve.predictions")
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        401: "Missing or wrong API key (when keys are configured)",
        408: "The body did not arrive within REQUEST_TIMEOUT_SECONDS",
        413: "Body over MAX_BODY_BYTES, or more samples than MAX_BATCH_ROWS",
        415: "Content type is not application/json",
        422: "Invalid JSON, samples that do not match the model's features, or values the "
        "model cannot take (model_rejected_input)",
        503: "Model not ready, draining, or the inference queue is full (see Retry-After)",
        504: "The request's deadline passed while it waited for the model",
    }.items()
}


def predict_router(runtime: Runtime, guards: Sequence[Any]) -> APIRouter:
    """The prediction routes for the runtime's model (the label route for classifiers only)."""
    router = APIRouter(prefix="/v1", tags=["predict"], dependencies=guards)
    handler = _PredictHandler(runtime)
    body = runtime.schemas.request_body()

    @router.post(
        "/predict",
        summary=f"Predict with {runtime.card.name} {runtime.card.version}",
        response_model=PredictResponse,
        responses=ERRORS,
        openapi_extra={"requestBody": body},
    )
    async def predict(request: Request) -> Response:
        return await handler.predict(request)

    if not handler.classes:
        return router
    label_enum: dict[str, Any] = {"enum": handler.classes}

    @router.post(
        "/predict/{label}",
        summary="Probability of one label for each sample",
        response_model=LabelProbabilityResponse,
        responses=ERRORS,
        openapi_extra={"requestBody": body},
    )
    async def predict_label(
        request: Request,
        # A default, not an annotation: this module's annotations are strings, resolved in its
        # globals, where the model's classes are not.
        label: str = Path(description="One of the model's classes.", json_schema_extra=label_enum),
    ) -> Response:
        return await handler.predict_label(request, label)

    return router


class _PredictHandler:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.card = runtime.card
        self.classes: list[str] = list(runtime.card.classes or [])
        self.class_index = {c: i for i, c in enumerate(self.classes)}
        self.model = runtime.metrics.model if runtime.metrics is not None else None
        self.intake = SampleIntake(
            runtime.schemas,
            max_body_bytes=self.settings.max_body_bytes,
            max_rows=self.settings.max_batch_rows,
        )
        self.timeout = self.settings.request_timeout_seconds
        key = self.settings.input_hash_key
        self.hash_input = input_hasher(key.get_secret_value().encode() if key else None)
        self.log_predictions = self.settings.prediction_log
        self.log_inputs = self.settings.log_inputs

    async def predict(self, request: Request) -> Response:
        samples, outcome = await self._run(request)
        request_id = request.scope.get(REQUEST_ID_KEY, "")
        serialize_started = time.perf_counter()
        body, labels, confidences = self._predictions_body(outcome.result, request_id)
        record_request_spans(outcome, len(samples), serialize_started, time.perf_counter())
        self._observe(request, samples, labels, confidences, request_id)
        return Response(body, media_type="application/json")

    def _predictions_body(
        self, result: BatchResult, request_id: str
    ) -> tuple[bytes, list[Any], list[float] | None]:
        """The /v1/predict body, with the labels and each label's probability (None: regressor)
        as lists, for the metrics and log lines."""
        labels: list[Any] = result.labels.tolist()
        confidences: list[float] | None
        predictions: list[dict[str, Any]]
        if result.probabilities is not None:
            confidences = result.probabilities.max(axis=1).tolist()
            rows = result.probabilities.tolist()
            predictions = [
                {
                    "label": label,
                    "probability": confidence,
                    "probabilities": dict(zip(self.classes, row, strict=True)),
                }
                for label, confidence, row in zip(labels, confidences, rows, strict=True)
            ]
        else:
            assert result.values is not None
            confidences = None
            predictions = [
                {"label": str(v), "probability": None, "value": v} for v in result.values.tolist()
            ]
        body = orjson.dumps(
            {
                "predictions": predictions,
                "model_name": self.card.name,
                "model_version": self.card.version,
                "request_id": request_id,
            }
        )
        return body, labels, confidences

    async def predict_label(self, request: Request, label: str) -> Response:
        index = self.class_index.get(label)
        if index is None:
            raise ApiError(
                422,
                "unknown_label",
                f"Unknown label {label!r}.",
                {"valid_labels": self.classes},
            )
        samples, outcome = await self._run(request)
        result = outcome.result
        assert result.probabilities is not None
        request_id = request.scope.get(REQUEST_ID_KEY, "")
        serialize_started = time.perf_counter()
        body = orjson.dumps(
            {
                "label": label,
                "probabilities": result.probabilities[:, index].tolist(),
                "model_name": self.card.name,
                "model_version": self.card.version,
                "request_id": request_id,
            }
        )
        record_request_spans(outcome, len(samples), serialize_started, time.perf_counter())
        confidences = result.probabilities.max(axis=1).tolist()
        self._observe(request, samples, result.labels.tolist(), confidences, request_id)
        return Response(body, media_type="application/json")

    async def _run(self, request: Request) -> tuple[Sequence[dict[str, Any]], Outcome]:
        queue = self.runtime.require_ready()
        deadline = request.scope.get(STARTED_KEY, time.perf_counter()) + self.timeout
        samples = await self.intake.samples(request, deadline)
        try:
            outcome = await queue.submit(samples, deadline)
        except Overloaded as exc:
            raise ApiError(
                503,
                "overloaded",
                "The inference queue is full; retry later.",
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        except DeadlineExceeded:
            raise ApiError(
                504,
                "deadline_exceeded",
                f"The request waited longer than its deadline ({self.timeout:g} s) for the "
                "model and was not computed; retry later.",
            ) from None
        except RejectedInput as exc:
            where = "these samples" if exc.sample is None else f"sample {exc.sample}"
            raise ApiError(
                422,
                "model_rejected_input",
                f"The model cannot predict {where}: {exc.reason}",
                {"sample": exc.sample},
            ) from None
        return samples, outcome

    def _observe(
        self,
        request: Request,
        samples: Sequence[dict[str, Any]],
        labels: list[Any],
        confidences: list[float] | None,
        request_id: str,
    ) -> None:
        if self.model is not None:
            self.model.count_predictions(labels)
            if confidences is not None:
                for confidence in confidences:
                    self.model.confidence.observe(confidence)
        if not self.log_predictions or not prediction_lines.enabled():
            return
        started = request.scope.get(STARTED_KEY)
        latency_ms = round((time.perf_counter() - started) * 1000.0, 3) if started else None
        for i, sample in enumerate(samples):
            fields: dict[str, Any] = {
                "event": "prediction",
                "request_id": request_id,
                "model_name": self.card.name,
                "model_version": self.card.version,
                "input_hash": self.hash_input(sample),
                "input_hash_scheme": self.hash_input.scheme,
                "label": labels[i],
                "probability": confidences[i] if confidences is not None else None,
                "latency_ms": latency_ms,
            }
            if self.log_inputs:
                fields["inputs"] = sample
            prediction_lines.emit(INFO, "prediction", fields)
