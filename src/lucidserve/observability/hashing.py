"""Input hashes for prediction logs: the same validated sample always hashes the same.

Canonical form: RFC 8785, the JSON Canonicalization Scheme (JCS), of the validated features as a
JSON object: every number as a float (so `5`, `5.0` and `5.00` are one value, written `5`), `null`
for a missing value, keys sorted by their UTF-16 code units, numbers in ECMAScript's shortest form
(`1e-7`, `1e+21`, `-0.0` as `0`). Any JCS library, in any language, gives the same bytes, so a team
can recompute the hash where it joins predictions with outcomes. The hash is SHA-256 of those bytes
(scheme `jcs-sha256`), or HMAC-SHA256 keyed with LUCIDSERVE_INPUT_HASH_KEY (`jcs-hmac-sha256`);
each prediction line names its scheme in `input_hash_scheme`.

The `rfc8785` package defines the bytes; it is pure Python (about 9 µs for an iris sample), so the
usual sample takes a path through orjson (about 1 µs) that gives the same bytes: an integral float
below 2**53 becomes an int (JCS writes `5`, orjson `5`), another float in [1e-4, 1e16) stays a float
(there orjson and ECMAScript both print the shortest round-trip digits without an exponent), and
orjson escapes strings exactly as JCS does. Any other number, a value of another type, or keys whose
code point order differs from their UTF-16 order (a key above U+FFFF beside one in U+E000..U+FFFF)
go to `rfc8785`. tests/test_hashing.py checks the two agree.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import orjson
import rfc8785

PLAIN_SCHEME = "jcs-sha256"
KEYED_SCHEME = "jcs-hmac-sha256"
_EXACT_INTEGERS = 2.0**53  # below this an integral float is exactly its int, digit for digit
_SORTED = orjson.OPT_SORT_KEYS


class InputHasher:
    """A validated sample's hex digest, and `scheme`, the name of the scheme that made it."""

    def __init__(self, key: bytes | None) -> None:
        self.scheme = KEYED_SCHEME if key else PLAIN_SCHEME
        self._digest: Callable[[Mapping[str, Any]], str]
        if key:
            self._digest = lambda s: hmac.new(key, canonical_json(s), hashlib.sha256).hexdigest()
        else:
            self._digest = lambda s: hashlib.sha256(canonical_json(s)).hexdigest()

    def __call__(self, sample: Mapping[str, Any]) -> str:
        return self._digest(sample)


def input_hasher(key: bytes | None) -> InputHasher:
    """The hasher for `key`: HMAC-SHA256 when a key is given, plain SHA-256 when not."""
    return InputHasher(key)


def canonical_json(sample: Mapping[str, Any]) -> bytes:
    """The RFC 8785 bytes of a validated sample, numbers taken as floats."""
    try:
        if not _orjson_sorts_as_jcs(tuple(sample)):
            return reference_canonical_json(sample)
        return orjson.dumps({key: _orjson_value(v) for key, v in sample.items()}, option=_SORTED)
    except _OutsideFastPathError:
        return reference_canonical_json(sample)


def reference_canonical_json(sample: Mapping[str, Any]) -> bytes:
    """The canonical bytes by the `rfc8785` package itself, numbers taken as floats."""
    return rfc8785.dumps({key: float(v) if type(v) is int else v for key, v in sample.items()})


class _OutsideFastPathError(Exception):
    """A key or value whose JCS bytes orjson does not write."""


def _orjson_value(value: Any) -> Any:
    """`value` as orjson must see it to print its JCS bytes."""
    kind = type(value)
    if kind is float:
        if value.is_integer():
            if -_EXACT_INTEGERS < value < _EXACT_INTEGERS:
                return int(value)
        elif 1e-4 <= abs(value) < 1e16:
            return value
        raise _OutsideFastPathError
    if kind is str or value is None or kind is bool:
        return value
    if kind is int and -_EXACT_INTEGERS < value < _EXACT_INTEGERS:
        return value
    raise _OutsideFastPathError


@lru_cache(maxsize=256)
def _orjson_sorts_as_jcs(keys: tuple[Any, ...]) -> bool:
    """Whether code point order (orjson's) is UTF-16 order (JCS's) for these keys; a model's
    samples share a few key tuples, so this is a cache hit."""
    if any(type(key) is not str for key in keys):
        raise _OutsideFastPathError
    return sorted(keys) == sorted(keys, key=lambda key: key.encode("utf-16-be"))
