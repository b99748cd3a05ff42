"""The Open Inference Protocol (KServe's V2 REST API) beside /v1, for the same model and path.

GET /v2/health/live|ready, /v2 (server metadata), /v2/models/{name}[/versions/{version}][/ready];
POST .../infer. Inputs: one tensor `input` of shape [N, n_features] (an all-numeric model), or one
tensor per feature named as in the card ([N] or [N, 1]; numbers, INT* for an integer column,
BOOL for booleans, BYTES for categories and text), as JSON `data` or binary (api/tensors.py).
They become the sample dicts /v1 validates, with the same schema, then go through /v1's queue and
recording (api/predict.py: PredictHandler), so a sample gets the same input hash, metrics, drift
counts and spans whichever API it came through.
Outputs: `label` (BYTES [N]) and `probabilities` (FP64 [N, n_classes], when the classifier has
them) for a classifier, `value` (FP64 [N]) for a regressor. A V2 tensor has no null: a missing
value is sent through /v1. Errors are {"error": message} (api/errors.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.responses import Response

from lucidserve import __version__
from lucidserve.api.errors import PROTOCOL_PREFIX, ApiError, ProtocolErrorResponse
from lucidserve.api.intake import read_body
from lucidserve.api.predict import PredictHandler
from lucidserve.api.tensors import (
    HEADER,
    NUMERIC_TYPES,
    Tensor,
    bad_request,
    decode_inputs,
    encode_bytes,
    split_body,
)
from lucidserve.bundle.card import ModelCard
from lucidserve.inference.predictor import Predictions
from lucidserve.runtime import Runtime

SINGLE_INPUT = "input"
_JSON = "application/json"


def _error(description: str) -> dict[str, Any]:
    return {"model": ProtocolErrorResponse, "description": description}


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("No such model or version")}
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: _error("The model is not ready (loading or draining)")
}
INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The outputs; with binary outputs asked for, the JSON header (its length "
        "in Inference-Header-Content-Length) then the binary tensors",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    400: _error("Malformed request, tensors that do not fit the model, or invalid values"),
    401: _error("Missing or wrong API key (when keys are configured)"),
    404: _error("No such model or version"),
    408: _error("The body did not arrive within REQUEST_TIMEOUT_SECONDS"),
    413: _error("Body over MAX_BODY_BYTES, or more rows than MAX_BATCH_ROWS"),
    422: _error("Values the model cannot take (model_rejected_input)"),
    503: _error("Model not ready, draining, or the inference queue is full"),
    504: _error("The request's deadline passed while it waited for the model"),
}


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any]


class OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferenceResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    id: str
    outputs: list[OutputTensor]


def model_metadata(card: ModelCard) -> dict[str, Any]:
    """The inputs the service accepts and the outputs it returns, from the card."""
    n = len(card.features)
    inputs: list[dict[str, Any]] = []
    if all(f.type == "number" for f in card.features):
        inputs.append({"name": SINGLE_INPUT, "datatype": "FP64", "shape": [-1, n]})
    for feature in card.features:
        datatype = (
            ("INT64" if feature.integer else "FP64")
            if feature.type == "number"
            else "BOOL"
            if feature.type == "boolean"
            else "BYTES"
        )
        inputs.append({"name": feature.name, "datatype": datatype, "shape": [-1]})
    if card.classes is not None:
        classes = list(card.classes)
        outputs = [{"name": "label", "datatype": "BYTES", "shape": [-1]}]
        if card.probabilities:
            outputs.append(
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(classes)]}
            )
        parameters: dict[str, Any] = {"task": card.task, "classes": classes}
    else:
        outputs = [{"name": "value", "datatype": "FP64", "shape": [-1]}]
        parameters = {"task": card.task}
    parameters["feature_order"] = [f.name for f in card.features]
    return {
        "name": card.name,
        "versions": [card.version],
        "platform": "scikit-learn",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": parameters,
    }


def inference_protocol_router(runtime: Runtime, guards: Sequence[Any]) -> APIRouter:
    """The protocol's routes for the runtime's model."""
    router = APIRouter(prefix=PROTOCOL_PREFIX, tags=["open inference protocol"])
    protocol = _Protocol(runtime)
    card = runtime.card
    server = {"name": "lucidserve", "version": __version__, "extensions": ["binary_tensor_data"]}
    metadata = orjson.dumps(model_metadata(card))

    @router.get("/health/live", summary="Server liveness (protocol)", response_model=Live)
    async def live() -> Response:
        return Response(b'{"live":true}', media_type=_JSON)

    @router.get(
        "/health/ready",
        summary="Server readiness (protocol)",
        response_model=Ready,
        responses=NOT_READY,
    )
    async def ready() -> Response:
        runtime.require_ready()
        return Response(b'{"ready":true}', media_type=_JSON)

    @router.get("", summary="Server metadata (protocol)", response_model=ServerMetadata)
    async def server_metadata() -> Response:
        return Response(orjson.dumps(server), media_type=_JSON)

    for versioned in (False, True):
        path = "/models/{model_name}" + ("/versions/{model_version}" if versioned else "")
        _add_model_routes(router, protocol, path, metadata, guards)
    return router


def _add_model_routes(
    router: APIRouter, protocol: _Protocol, path: str, metadata: bytes, guards: Sequence[Any]
) -> None:
    # The handlers read the path parameters themselves (one handler for both paths); the
    # document declares them, each with the one value that is not a 404.
    card = protocol.card
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": [value]},
        }
        for name, value in (("model_name", card.name), ("model_version", card.version))
        if "{" + name + "}" in path
    ]
    documented: dict[str, Any] = {"parameters": parameters}

    @router.get(
        path,
        summary="Model metadata (protocol)",
        response_model=ModelMetadata,
        responses={**NOT_FOUND, 401: _error("Missing or wrong API key")},
        dependencies=list(guards),
        openapi_extra=documented,
    )
    async def get_metadata(request: Request) -> Response:
        protocol.check_model(request)
        return Response(metadata, media_type=_JSON)

    @router.get(
        path + "/ready",
        summary="Model readiness (protocol)",
        response_model=ModelReady,
        responses={**NOT_FOUND, **NOT_READY},
        openapi_extra=documented,
    )
    async def model_ready(request: Request) -> Response:
        protocol.check_model(request)
        protocol.runtime.require_ready()
        return Response(orjson.dumps({"name": card.name, "ready": True}), media_type=_JSON)

    @router.post(
        path + "/infer",
        summary="Inference (protocol)",
        response_model=InferenceResponse,
        responses=INFER_ERRORS,
        dependencies=list(guards),
        openapi_extra={**documented, "requestBody": _request_body()},
    )
    async def infer(request: Request) -> Response:
        return await protocol.infer(request)


def _request_body() -> dict[str, Any]:
    tensor = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": ["BYTES", "BOOL", *NUMERIC_TYPES]},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    schema = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "minItems": 1, "items": tensor},
            "outputs": {"type": "array", "items": {"type": "object"}},
            "parameters": {"type": "object"},
        },
    }
    return {"required": True, "content": {_JSON: {"schema": schema}}}


# The tensor datatype each feature type takes; a number takes any numeric type.
_DATATYPES = {
    "number": "a number type (FP64, FP32, INT*)",
    "boolean": "BOOL",
    "category": "BYTES",
    "text": "BYTES",
}


class _Protocol:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.card = card = runtime.card
        self.handler = PredictHandler(runtime)
        self.schemas = runtime.schemas
        self.names = [f.name for f in card.features]
        self.kinds = {f.name: f.type for f in card.features}
        self.all_numeric = all(f.type == "number" for f in card.features)
        self.classes = list(card.classes or [])
        settings = runtime.settings
        self.max_body_bytes = settings.max_body_bytes
        self.max_rows = settings.max_batch_rows
        self.output_names: tuple[str, ...] = (
            ("value",)
            if card.classes is None
            else ("label", "probabilities")
            if card.probabilities
            else ("label",)
        )

    def check_model(self, request: Request) -> None:
        name = request.path_params.get("model_name")
        version = request.path_params.get("model_version")
        if name != self.card.name:
            raise ApiError(404, "not_found", f"Unknown model {str(name)[:80]!r}.")
        if version is not None and version != self.card.version:
            raise ApiError(
                404, "not_found", f"Unknown version {version[:80]!r} of model {self.card.name!r}."
            )

    async def infer(self, request: Request) -> Response:
        self.check_model(request)
        self.runtime.require_ready()
        deadline = self.handler.deadline(request)
        header_length = request.headers.get(HEADER)
        # Any content type: the protocol names none, and clients differ (curl -d, tritonclient).
        raw = await read_body(request, self.max_body_bytes, deadline)
        document, binary = split_body(raw, header_length)
        samples = self._samples(decode_inputs(document, binary))
        requested = self._requested_outputs(document)
        outcome = await self.handler.infer(samples, deadline)
        result = outcome.result
        serialize_started = time.perf_counter()
        predictions = Predictions.of(result)
        tensors: dict[str, tuple[str, list[int], Any]] = {}
        if predictions.labels is not None:
            tensors["label"] = ("BYTES", [len(samples)], predictions.labels)
        if result.probabilities is not None:
            tensors["probabilities"] = (
                "FP64",
                list(result.probabilities.shape),
                result.probabilities,
            )
        if result.values is not None:
            tensors["value"] = ("FP64", [len(samples)], result.values)
        body = self._encode(document, requested, tensors)
        self.handler.record(request, samples, outcome, predictions, serialize_started)
        return body

    def _requested_outputs(self, document: dict[str, Any]) -> list[tuple[str, bool]]:
        parameters = document.get("parameters")
        binary_default = (
            isinstance(parameters, dict) and parameters.get("binary_data_output") is True
        )
        outputs = document.get("outputs")
        if outputs is None:
            return [(name, binary_default) for name in self.output_names]
        if not isinstance(outputs, list):
            raise bad_request("outputs must be a list.")
        requested: list[tuple[str, bool]] = []
        for item in outputs:
            name = item.get("name") if isinstance(item, dict) else None
            if name not in self.output_names:
                raise bad_request(
                    f"Unknown output {str(name)[:80]!r}; the model has {list(self.output_names)}."
                )
            params = item.get("parameters") or {}
            binary = (
                params.get("binary_data", binary_default) if isinstance(params, dict) else False
            )
            requested.append((str(name), binary is True))
        return requested

    def _encode(
        self,
        document: dict[str, Any],
        requested: list[tuple[str, bool]],
        tensors: dict[str, tuple[str, list[int], Any]],
    ) -> Response:
        outputs: list[dict[str, Any]] = []
        chunks: list[bytes] = []
        for name, binary in requested:
            datatype, shape, values = tensors[name]
            output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
            if binary:
                if datatype == "BYTES":
                    chunk = encode_bytes(values)
                else:
                    chunk = np.ascontiguousarray(values, dtype="<f8").tobytes()
                output["parameters"] = {"binary_data_size": len(chunk)}
                chunks.append(chunk)
            else:
                output["data"] = values if datatype == "BYTES" else np.ravel(values).tolist()
            outputs.append(output)
        request_id = document.get("id")
        header = orjson.dumps(
            {
                "model_name": self.card.name,
                "model_version": self.card.version,
                "id": request_id if isinstance(request_id, str) else "",
                "outputs": outputs,
            }
        )
        if not chunks:
            return Response(header, media_type=_JSON)
        return Response(
            header + b"".join(chunks),
            media_type="application/octet-stream",
            headers={"Inference-Header-Content-Length": str(len(header))},
        )

    def _samples(self, tensors: list[Tensor]) -> list[dict[str, Any]]:
        """The /v1 sample dicts the tensors hold, validated with /v1's schema."""
        columns: dict[str, list[Any]] = {}
        rows: int | None = None
        if len(tensors) == 1 and tensors[0].name == SINGLE_INPUT and self.all_numeric:
            tensor = tensors[0]
            if len(tensor.shape) != 2 or tensor.shape[1] != len(self.names):
                raise bad_request(
                    f"Input {SINGLE_INPUT!r} must have shape [N, {len(self.names)}], "
                    f"not {list(tensor.shape)}."
                )
            if tensor.datatype not in ("FP32", "FP64"):
                raise bad_request(f"Input {SINGLE_INPUT!r} must be FP32 or FP64.")
            rows = tensor.shape[0]
            self._check_rows(rows)
            assert isinstance(tensor.values, np.ndarray)
            matrix = tensor.values.reshape(rows, len(self.names))
            for index, name in enumerate(self.names):
                columns[name] = matrix[:, index].tolist()
        else:
            for tensor in tensors:
                kind = self.kinds.get(tensor.name)
                if kind is None:
                    raise bad_request(
                        f"Unknown input {tensor.name[:80]!r}; the model takes {self.names}"
                        + (f" or {SINGLE_INPUT!r}." if self.all_numeric else ".")
                    )
                if tensor.name in columns:
                    raise bad_request(f"Input {tensor.name[:80]!r} is given twice.")
                if len(tensor.shape) == 2 and tensor.shape[1] != 1:
                    raise bad_request(
                        f"Input {tensor.name[:80]!r} must have shape [N] or [N, 1], "
                        f"not {list(tensor.shape)}."
                    )
                expected = _DATATYPES[kind]
                if (tensor.datatype in ("BYTES", "BOOL") or kind != "number") and (
                    tensor.datatype != expected
                ):
                    raise bad_request(f"Input {tensor.name[:80]!r} must be {expected}.")
                if rows is None:
                    rows = tensor.shape[0]
                    self._check_rows(rows)
                elif tensor.shape[0] != rows:
                    raise bad_request("Every input must have the same number of rows.")
                values = tensor.values
                columns[tensor.name] = values.tolist() if isinstance(values, np.ndarray) else values
            missing = [name for name in self.names if name not in columns]
            if missing:
                raise bad_request(f"Missing inputs: {missing[:20]}.")
        if not rows:
            raise bad_request("The inputs hold no rows.")
        samples = [
            dict(zip(self.names, row, strict=True))
            for row in zip(*(columns[n] for n in self.names), strict=True)
        ]
        try:
            self.schemas.predict_request.validate_python({"samples": samples})
        except ValidationError as exc:
            raise self._invalid(exc, samples) from None
        return samples

    def _check_rows(self, rows: int) -> None:
        if rows > self.max_rows:
            raise ApiError(
                413, "too_many_samples", f"{rows} rows exceed the limit of {self.max_rows}."
            )

    def _invalid(self, exc: ValidationError, samples: list[dict[str, Any]]) -> ApiError:
        try:
            self.schemas.first_invalid_sample.validate_python({"samples": samples})
            errors = exc.errors(include_url=False, include_input=False)
        except ValidationError as first:
            errors = first.errors(include_url=False, include_input=False)
        error = errors[0]
        location = error["loc"]
        where = (
            f"row {location[1]}, input {str(location[2])[:80]!r}: " if len(location) >= 3 else ""
        )
        count = exc.error_count()
        more = f" ({count} problems in all)" if count > 1 else ""
        return bad_request(f"Invalid value at {where}{error['msg'][:120]}{more}.")
