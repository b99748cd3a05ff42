"""Input hashes for prediction logs: the same validated sample always hashes the same.

Canonical form: the validated features (numbers already parsed as floats, so `5`, `5.0` and `5.00`
are one value) serialized by Python's `json.dumps(sample, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`, encoded as UTF-8. The hash is SHA-256 of those bytes, or HMAC-SHA256 keyed
with LUCIDSERVE_INPUT_HASH_KEY when set. README shows how to recompute it in a few lines.

The bytes are made by orjson when that gives the same bytes, several times faster than the json
module. Both sort keys by code point and escape strings alike (ensure_ascii=False), and both print
a finite float as the same shortest round-trip digits, except where either uses an exponent: json
writes 1e-05 and 1e+16 where orjson writes 1e-5 and 1e16, and orjson writes 0.00001234 where json
writes 1.234e-05. So any orjson output with an `e` followed by a sign or a digit, or with
`0.0000`, is encoded again by the json module; a string that happens to contain those only costs
the slower encoding. Non-finite floats never get here: the request schema refuses them (json and
orjson differ there).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_SORTED = orjson.OPT_SORT_KEYS
_EXPONENT = re.compile(rb"e[-+0-9]")  # with b"0.0000": where orjson and json may print differently


def canonical_json(sample: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a validated sample."""
    try:
        fast = orjson.dumps(sample, option=_SORTED)
    except TypeError:  # a type orjson does not take: json has the say
        return reference_canonical_json(sample)
    if b"0.0000" in fast or _EXPONENT.search(fast):
        return reference_canonical_json(sample)
    return fast


def reference_canonical_json(sample: Mapping[str, Any]) -> bytes:
    """The canonical bytes as the definition states them (the json module), for any sample."""
    return _encode(sample).encode("utf-8")


def input_hasher(key: bytes | None) -> Callable[[Mapping[str, Any]], str]:
    """A function from a validated sample to its hex digest (keyed HMAC when `key` is given)."""
    if key:
        return lambda sample: hmac.new(key, canonical_json(sample), hashlib.sha256).hexdigest()
    return lambda sample: hashlib.sha256(canonical_json(sample)).hexdigest()
