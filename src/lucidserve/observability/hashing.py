"""Input hashes for prediction logs: the same validated sample always hashes the same.

Canonical form: the validated features (numbers already parsed as floats, so `5`, `5.0` and `5.00`
are one value) serialized by Python's `json.dumps(sample, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`, encoded as UTF-8. The hash is SHA-256 of those bytes, or HMAC-SHA256 keyed
with LUCIDSERVE_INPUT_HASH_KEY when set. README shows how to recompute it in a few lines.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(sample: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a validated sample."""
    return _encode(sample).encode("utf-8")


def input_hasher(key: bytes | None) -> Callable[[Mapping[str, Any]], str]:
    """A function from a validated sample to its hex digest (keyed HMAC when `key` is given)."""
    if key:
        return lambda sample: hmac.new(key, canonical_json(sample), hashlib.sha256).hexdigest()
    return lambda sample: hashlib.sha256(canonical_json(sample)).hexdigest()
