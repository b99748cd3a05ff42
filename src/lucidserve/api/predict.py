"""POST /v1/predict and /v1/predict/{label}: the request's path, in one direction.

body (api/intake.py: content type, size, deadline, schema) -> inference queue -> orjson response
-> the predictions recorded (metrics, a log line per sample: the observability object).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from lucidserve.api.errors import ApiError, ErrorResponse
from lucidserve.api.intake import SampleIntake
from lucidserve.bundle.schema import (
    ClassificationResponse,
    LabelProbabilityResponse,
    RegressionResponse,
)
from lucidserve.inference.batcher import DeadlineExceeded, Outcome, Overloaded
from lucidserve.inference.predictor import Predictions, RejectedInput
from lucidserve.observability.middleware import REQUEST_ID_KEY, STARTED_KEY
from lucidserve.observability.spans import record_request_spans
from lucidserve.runtime import Runtime

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
    """The prediction routes for the runtime's model (the label route for classifiers with
    probabilities; for other models it is a 404 that says why)."""
    router = APIRouter(prefix="/v1", tags=["predict"], dependencies=guards)
    handler = PredictHandler(runtime)
    body = runtime.schemas.request_body()

    @router.post(
        "/predict",
        summary=f"Predict with {runtime.card.name} {runtime.card.version}",
        response_model=ClassificationResponse if handler.classes else RegressionResponse,
        responses=ERRORS,
        openapi_extra={"requestBody": body},
    )
    async def predict(request: Request) -> Response:
        return await handler.predict(request)

    if not handler.has_probabilities:
        reason = (
            f"{runtime.card.name} is a regressor: it predicts values, not labels. "
            'POST /v1/predict answers {"value": ...} per sample.'
            if not handler.classes
            else f"{runtime.card.name} has no class probabilities (no predict_proba). "
            "POST /v1/predict answers each sample's label."
        )

        @router.post("/predict/{label}", include_in_schema=False)
        async def no_label_route(label: str) -> Response:
            raise ApiError(404, "no_label_probabilities", reason)

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


Content = Callable[[Predictions], dict[str, Any]]
"""A response body's own part, from a request's predictions."""


class PredictHandler:
    """The prediction path shared by /v1 and the Open Inference Protocol
    (api/inference_protocol.py): the queue (`infer`), and the request's spans and predictions
    recorded (`record`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.card = runtime.card
        self.observability = runtime.observability
        self.classes: list[str] = list(runtime.card.classes or [])
        self.class_index = {c: i for i, c in enumerate(self.classes)}
        self.has_probabilities = bool(self.classes) and self.card.probabilities
        settings = runtime.settings
        self.intake = SampleIntake(
            runtime.schemas,
            max_body_bytes=settings.max_body_bytes,
            max_rows=settings.max_batch_rows,
        )
        self.timeout = settings.request_timeout_seconds

    async def predict(self, request: Request) -> Response:
        return await self._respond(request, self._predictions)

    async def predict_label(self, request: Request, label: str) -> Response:
        index = self.class_index.get(label)
        if index is None:
            raise ApiError(
                422,
                "unknown_label",
                f"Unknown label {label!r}.",
                {"valid_labels": self.classes},
            )

        def probabilities(predictions: Predictions) -> dict[str, Any]:
            assert predictions.result.probabilities is not None
            column = predictions.result.probabilities[:, index]
            return {"label": label, "probabilities": column.tolist()}

        return await self._respond(request, probabilities)

    async def _respond(self, request: Request, content: Content) -> Response:
        """Predict, encode the body (`content` and the model's identity), record the request's
        spans and predictions."""
        samples, outcome = await self._run(request)
        predictions = Predictions.of(outcome.result)
        request_id = request.scope.get(REQUEST_ID_KEY, "")
        serialize_started = time.perf_counter()
        body = content(predictions)
        body["model_name"] = self.card.name
        body["model_version"] = self.card.version
        body["request_id"] = request_id
        encoded = orjson.dumps(body)
        self.record(request, samples, outcome, predictions, serialize_started)
        return Response(encoded, media_type="application/json")

    def record(
        self,
        request: Request,
        samples: Sequence[dict[str, Any]],
        outcome: Outcome,
        predictions: Predictions,
        serialize_started: float,
    ) -> None:
        """The request's spans, metrics and a log line per sample, once its body is encoded."""
        record_request_spans(outcome, len(samples), serialize_started, time.perf_counter())
        request_id = request.scope.get(REQUEST_ID_KEY, "")
        started = request.scope.get(STARTED_KEY)
        self.observability.record_predictions(request_id, samples, predictions, started)

    def _predictions(self, predictions: Predictions) -> dict[str, Any]:
        """The /v1/predict body's predictions: a classifier's labels (with probabilities when it
        has them), or a regressor's values."""
        if predictions.values is not None:
            return {"predictions": [{"value": v} for v in predictions.values]}
        assert predictions.labels is not None
        probabilities = predictions.result.probabilities
        if probabilities is None or predictions.confidences is None:
            return {
                "predictions": [
                    {"label": label, "probability": None, "probabilities": None}
                    for label in predictions.labels
                ]
            }
        classes = self.classes
        return {
            "predictions": [
                {
                    "label": label,
                    "probability": confidence,
                    "probabilities": dict(zip(classes, row, strict=True)),
                }
                for label, confidence, row in zip(
                    predictions.labels, predictions.confidences, probabilities.tolist(), strict=True
                )
            ]
        }

    def deadline(self, request: Request) -> float:
        """The request's deadline, a `time.perf_counter()` time."""
        started: float = request.scope.get(STARTED_KEY, time.perf_counter())
        return started + self.timeout

    async def _run(self, request: Request) -> tuple[Sequence[dict[str, Any]], Outcome]:
        self.runtime.require_ready()
        deadline = self.deadline(request)
        samples = await self.intake.samples(request, deadline)
        return samples, await self.infer(samples, deadline)

    async def infer(self, samples: Sequence[dict[str, Any]], deadline: float) -> Outcome:
        """Validated samples through the inference queue; ApiErrors for 503, 504 and 422."""
        queue = self.runtime.require_ready()
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
        return outcome
