"""The input hash: SHA-256 (or HMAC-SHA256) of the RFC 8785 bytes the `rfc8785` package writes."""

from __future__ import annotations

import hashlib
import hmac
import math

import numpy as np
import pytest
import rfc8785

from lucidserve.observability.hashing import (
    KEYED_SCHEME,
    PLAIN_SCHEME,
    canonical_json,
    input_hasher,
)


def _jcs(sample: dict[str, object]) -> bytes:
    """The definition: numbers as floats, then rfc8785."""
    return rfc8785.dumps({k: float(v) if type(v) is int else v for k, v in sample.items()})  # type: ignore[arg-type]


def _floats() -> list[float]:
    """Floats of every magnitude, the edges of each notation's range, and short decimals."""
    rng = np.random.default_rng(20261122)
    magnitudes = 10.0 ** rng.uniform(-320, 308, 20_000) * rng.choice([-1.0, 1.0], 20_000)
    raw_bits = rng.integers(0, 2**63, 20_000, dtype=np.int64).view(np.float64)
    decimals = np.concatenate([np.round(rng.uniform(-1e4, 1e4, 2_000), k) for k in range(7)])
    integral = np.round(10.0 ** rng.uniform(0, 22, 2_000))
    edges: list[float] = [0.0, -0.0, 5e-324, 1.7976931348623157e308, 2.0**53, 2.0**60]
    for edge in (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e15, 1e16, 1e17, 2.0**53, 1e21, 1e22):
        for direction in (math.inf, -math.inf):
            x = edge
            for _ in range(20):
                edges += [x, -x]
                x = math.nextafter(x, direction)
    values = np.concatenate([magnitudes, raw_bits, decimals, integral, np.array(edges)])
    return [v for v in values.tolist() if math.isfinite(v)]


def test_canonical_form_is_rfc8785_for_floats_of_every_magnitude() -> None:
    floats = _floats()
    for start in range(0, len(floats), 4):
        sample = {f"f{i}": v for i, v in enumerate(floats[start : start + 4])}
        assert canonical_json(sample) == _jcs(sample), sample


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (1e-7, b"1e-7"),
        (1e-6, b"0.000001"),
        (1e21, b"1e+21"),
        (1e20, b"100000000000000000000"),
        (-0.0, b"0"),
        (5e-324, b"5e-324"),
        (float(2**53), b"9007199254740992"),
        (float(2**60), b"1152921504606847000"),
        (5.0, b"5"),
        (5, b"5"),
        (2**60, b"1152921504606847000"),
        (None, b"null"),
    ],
)
def test_unusual_numbers_and_nulls_are_written_as_jcs_writes_them(
    value: object, written: bytes
) -> None:
    sample = {"x": value, "a": 1.5}
    assert canonical_json(sample) == _jcs(sample) == b'{"a":1.5,"x":' + written + b"}"


def test_canonical_form_is_rfc8785_for_every_character() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    sample = {"text": every, "quote": '"\\/\b\f\n\r\t\x00\x1f\x7f\u2028', "n": 1.5}
    assert canonical_json(sample) == _jcs(sample)


def test_keys_sort_by_utf16_code_units_as_jcs_sorts_them() -> None:
    sample = {"z": 1.0, "é": 2.0, "a": 3.0, "😀": 4.0, "\uffff": 5.0, "A": 6.0, "a b": 7.0}
    canonical = canonical_json(sample)
    assert canonical == _jcs(sample)
    # U+FFFF sorts after the surrogate pair of U+1F600 in UTF-16, before it by code point.
    assert canonical.index("😀".encode()) < canonical.index("\uffff".encode())


def test_key_order_and_number_spelling_do_not_change_the_hash() -> None:
    hasher = input_hasher(None)
    assert hasher({"a": 5, "b": None}) == hasher({"b": None, "a": 5.0})


def test_the_hash_is_sha256_or_hmac_of_the_rfc8785_bytes() -> None:
    sample = {"sepal_length": 5.1, "species_hint": "setosa", "petal_width": 2.0, "gap": None}
    canonical = rfc8785.dumps(sample)
    assert canonical == b'{"gap":null,"petal_width":2,"sepal_length":5.1,"species_hint":"setosa"}'
    plain, keyed = input_hasher(None), input_hasher(b"k")
    assert plain(sample) == hashlib.sha256(canonical).hexdigest()
    assert keyed(sample) == hmac.new(b"k", canonical, hashlib.sha256).hexdigest()
    assert (plain.scheme, keyed.scheme) == (PLAIN_SCHEME, KEYED_SCHEME)
    assert (PLAIN_SCHEME, KEYED_SCHEME) == ("jcs-sha256", "jcs-hmac-sha256")
