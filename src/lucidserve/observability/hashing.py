"""Input hashes for prediction logs: the same validated sample always hashes the same.

Canonical form: the validated features (numbers already parsed as floats, so `5`, `5.0` and `5.00`
are one value) serialized by Python's `json.dumps(sample, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`, encoded as UTF-8. The hash is SHA-256 of those bytes, or HMAC-SHA256 keyed
with LUCIDSERVE_INPUT_HASH_KEY when set. README shows how to recompute it in a few lines.

The bytes are made by orjson when that gives the same bytes, several times faster than the json
module: orjson sorts keys and escapes strings exactly as json does (ensure_ascii=False), and
prints each float as the same shortest round-trip digits, except in the ranges where either of
them switches to exponent form (below 1e-4 and from 1e16 on: json writes 1e-05 and 1e+16, orjson
1e-5 and 1e16, and orjson writes 0.00001234 where json writes 1.234e-05). A sample with such a
float, or with anything but floats and strings, is encoded by the json module itself. (Neither
encodes a lone surrogate, and none reaches here: the request parser refuses one.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

import orjson

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_SORTED = orjson.OPT_SORT_KEYS
_PLAIN_LOW, _PLAIN_HIGH = 1e-4, 1e16  # where both print floats without an exponent


def canonical_json(sample: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a validated sample."""
    if _orjson_prints_alike(sample):
        return orjson.dumps(sample, option=_SORTED)
    return reference_canonical_json(sample)


def reference_canonical_json(sample: Mapping[str, Any]) -> bytes:
    """The canonical bytes as the definition states them (the json module), for any sample."""
    return _encode(sample).encode("utf-8")


def _orjson_prints_alike(sample: Mapping[str, Any]) -> bool:
    for value in sample.values():
        kind = type(value)
        if kind is float:
            if not (_PLAIN_LOW <= abs(value) < _PLAIN_HIGH or value == 0.0):
                return False
        elif kind is not str:
            return False
    return True


def input_hasher(key: bytes | None) -> Callable[[Mapping[str, Any]], str]:
    """A function from a validated sample to its hex digest (keyed HMAC when `key` is given)."""
    if key:
        return lambda sample: hmac.new(key, canonical_json(sample), hashlib.sha256).hexdigest()
    return lambda sample: hashlib.sha256(canonical_json(sample)).hexdigest()
