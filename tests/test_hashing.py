"""The input hash's canonical form: the fast encoder gives exactly the json module's bytes."""

from __future__ import annotations

import hashlib
import hmac
import json
import math

import numpy as np
import pytest

from lucidserve.observability.hashing import (
    canonical_json,
    input_hasher,
    reference_canonical_json,
)


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _floats() -> list[float]:
    """Floats of every magnitude, the edges of the plain-notation range, and short decimals."""
    rng = np.random.default_rng(20261122)
    magnitudes = 10.0 ** rng.uniform(-320, 308, 20_000) * rng.choice([-1.0, 1.0], 20_000)
    raw_bits = rng.integers(0, 2**63, 20_000, dtype=np.int64).view(np.float64)
    decimals = np.concatenate([np.round(rng.uniform(-1e4, 1e4, 2_000), k) for k in range(7)])
    edges: list[float] = [0.0, -0.0, 5e-324, 1.7976931348623157e308]
    for edge in (1e-5, 1e-4, 1e-3, 1e15, 1e16, 1e17):
        for direction in (math.inf, -math.inf):
            x = edge
            for _ in range(20):
                edges += [x, -x]
                x = math.nextafter(x, direction)
    values = np.concatenate([magnitudes, raw_bits, decimals, np.array(edges)])
    return [v for v in values.tolist() if math.isfinite(v)]


def test_canonical_form_is_the_json_modules_for_floats_of_every_magnitude() -> None:
    floats = _floats()
    for start in range(0, len(floats), 4):
        sample = {f"f{i}": v for i, v in enumerate(floats[start : start + 4])}
        assert canonical_json(sample) == _json_bytes(sample), sample


def test_canonical_form_is_the_json_modules_for_every_character() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    sample = {"text": every, "quote": '"\\/\b\f\n\r\t\x00\x1f\x7f', "n": 1.5}
    assert canonical_json(sample) == _json_bytes(sample)


def test_keys_sort_by_code_point_as_json_sorts_them() -> None:
    sample = {"z": 1.0, "é": 2.0, "a": 3.0, "😀": 4.0, "\uffff": 5.0, "A": 6.0, "a b": 7.0}
    assert canonical_json(sample) == _json_bytes(sample)


@pytest.mark.parametrize(
    "sample",
    [
        {"count": 5, "x": 1.0},
        {"flag": True, "x": 1.0},
        {"missing": None, "x": 1.0},
        {"tiny": 1.5e-7, "x": 1.0},
        {"huge": 3e20, "x": 1.0},
    ],
)
def test_values_outside_the_fast_path_are_encoded_by_json(sample: dict[str, object]) -> None:
    assert canonical_json(sample) == reference_canonical_json(sample) == _json_bytes(sample)


def test_the_hash_is_sha256_or_hmac_of_the_canonical_bytes() -> None:
    sample = {"sepal_length": 5.1, "species_hint": "setosa"}
    canonical = b'{"sepal_length":5.1,"species_hint":"setosa"}'
    assert input_hasher(None)(sample) == hashlib.sha256(canonical).hexdigest()
    assert input_hasher(b"k")(sample) == hmac.new(b"k", canonical, hashlib.sha256).hexdigest()
