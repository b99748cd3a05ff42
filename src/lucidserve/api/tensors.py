"""The Open Inference Protocol's tensors: JSON `data` and Triton's binary tensor extension.

A request body is JSON, or (with the `Inference-Header-Content-Length` header) that many bytes of
JSON followed by the binary tensors, in the order of the inputs that declare
`parameters.binary_data_size`. Numbers travel little-endian, row-major; a BYTES element is a
4-byte little-endian length and that many bytes. Every check here is linear in the body's size,
which MAX_BODY_BYTES bounds.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from lucidserve.api.errors import ApiError

NUMERIC_TYPES: dict[str, str] = {
    "FP32": "<f4",
    "FP64": "<f8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
}
HEADER = "inference-header-content-length"


Values = np.ndarray | list[str] | list[bool]
"""A tensor's values, flat: numbers (float64, or the integer type sent), strings or booleans."""


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


@dataclass(frozen=True)
class Tensor:
    """One decoded input: its name, datatype, shape and values, flat."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: Values


def split_body(raw: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The request's JSON document and the binary bytes after it."""
    if header_length is None:
        json_part, binary = raw, b""
    else:
        if not header_length.isdigit():
            raise bad_request("Inference-Header-Content-Length must be a number of bytes.")
        length = int(header_length)
        if length > len(raw):
            raise bad_request(
                f"Inference-Header-Content-Length ({length}) is larger than the body "
                f"({len(raw)} bytes)."
            )
        json_part, binary = raw[:length], raw[length:]
    try:
        document = orjson.loads(json_part)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The request header is not valid JSON: {exc}.") from None
    if not isinstance(document, dict):
        raise bad_request("The inference request must be a JSON object.")
    return document, binary


def decode_inputs(document: dict[str, Any], binary: bytes) -> list[Tensor]:
    """Every input tensor of the request, checked against its declared shape and datatype."""
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request("The request needs a non-empty list of inputs.")
    tensors: list[Tensor] = []
    offset = 0
    for item in inputs:
        if not isinstance(item, dict):
            raise bad_request("Every input must be an object.")
        tensor, used = _decode(item, binary, offset)
        offset += used
        tensors.append(tensor)
    if offset != len(binary):
        raise bad_request(
            f"The inputs declare {offset} bytes of binary data; the body holds {len(binary)}."
        )
    return tensors


def _decode(item: dict[str, Any], binary: bytes, offset: int) -> tuple[Tensor, int]:
    name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    if not isinstance(name, str):
        raise bad_request("Every input needs a name.")
    if not isinstance(datatype, str) or (
        datatype not in ("BYTES", "BOOL") and datatype not in NUMERIC_TYPES
    ):
        raise bad_request(f"Input {name[:80]!r}: unsupported datatype {str(datatype)[:20]!r}.")
    if (
        not isinstance(shape, list)
        or not shape
        or len(shape) > 2
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise bad_request(f"Input {name[:80]!r}: the shape must be a list of 1 or 2 sizes.")
    count = math.prod(shape)
    parameters = item.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if type(size) is not int or size < 0:
            raise bad_request(f"Input {name[:80]!r}: binary_data_size must be a byte count.")
        if offset + size > len(binary):
            raise bad_request(f"Input {name[:80]!r}: the body ends inside its binary data.")
        chunk = binary[offset : offset + size]
        values = _from_binary(name, datatype, chunk, count)
        return Tensor(name, datatype, tuple(shape), values), size
    if "data" not in item:
        raise bad_request(f"Input {name[:80]!r} has neither data nor binary_data_size.")
    values = _from_json(name, datatype, _flat(item["data"]), count)
    return Tensor(name, datatype, tuple(shape), values), 0


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if all(not isinstance(v, list) for v in data):
        return data
    flat: list[Any] = []
    for value in data:
        flat.extend(_flat(value))
    return flat


def _from_json(name: str, datatype: str, data: list[Any], count: int) -> Values:
    if len(data) != count:
        raise bad_request(f"Input {name[:80]!r}: {len(data)} values for its shape ({count}).")
    if datatype == "BYTES":
        if not all(type(v) is str for v in data):
            raise bad_request(f"Input {name[:80]!r}: BYTES data must be strings.")
        return data
    if datatype == "BOOL":
        if not all(type(v) is bool for v in data):
            raise bad_request(f"Input {name[:80]!r}: BOOL data must be true or false.")
        return data
    floating = datatype.startswith("FP")
    if not all(type(v) is int or (floating and type(v) is float) for v in data):
        kind = "numbers" if floating else "integers"
        raise bad_request(f"Input {name[:80]!r}: {datatype} data must be {kind}.")
    try:
        return np.asarray(data, dtype=np.float64 if floating else NUMERIC_TYPES[datatype])
    except OverflowError:
        raise bad_request(f"Input {name[:80]!r}: a value is out of range for {datatype}.") from None


def _from_binary(name: str, datatype: str, chunk: bytes, count: int) -> Values:
    if datatype != "BYTES":
        dtype = np.dtype("?" if datatype == "BOOL" else NUMERIC_TYPES[datatype])
        if len(chunk) != count * dtype.itemsize:
            raise bad_request(
                f"Input {name[:80]!r}: {len(chunk)} bytes of binary data for {count} "
                f"{datatype} values."
            )
        numbers = np.frombuffer(chunk, dtype=dtype)
        if datatype == "BOOL":
            return [bool(v) for v in numbers.tolist()]
        # Integer tensors stay whole numbers (an integer feature takes no 3.0).
        return numbers.astype(np.float64) if datatype.startswith("FP") else numbers
    values: list[str] = []
    position = 0
    while position < len(chunk):
        if position + 4 > len(chunk):
            raise bad_request(f"Input {name[:80]!r}: truncated BYTES element.")
        (length,) = struct.unpack_from("<I", chunk, position)
        position += 4
        if position + length > len(chunk):
            raise bad_request(f"Input {name[:80]!r}: truncated BYTES element.")
        try:
            values.append(chunk[position : position + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise bad_request(f"Input {name[:80]!r}: a BYTES element is not UTF-8.") from None
        position += length
    if len(values) != count:
        raise bad_request(f"Input {name[:80]!r}: {len(values)} elements for its shape ({count}).")
    return values


def encode_bytes(values: list[str]) -> bytes:
    """BYTES elements in the binary extension's form."""
    parts: list[bytes] = []
    for value in values:
        encoded = value.encode("utf-8")
        parts.append(struct.pack("<I", len(encoded)))
        parts.append(encoded)
    return b"".join(parts)
