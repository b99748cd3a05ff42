"""Steady demo traffic for the local stack: a few predictions a second, now and then a bad one.

Standard library only (it runs in the lucidserve image). Samples are drawn inside the ranges the
model card publishes, so any served model gets valid inputs; one request in twenty is invalid
(a 422), so the error panels have something to show. Usage: traffic.py BASE_URL [REQUESTS_PER_S]
"""

from __future__ import annotations

import json
import random
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def main() -> None:
    base = sys.argv[1].rstrip("/")
    per_second = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    card = _call(base, "GET", "/v1/model")[1]
    rng = random.Random(7)  # noqa: S311 - demo traffic, not cryptography
    sent = 0
    while True:
        sent += 1
        rows = [_sample(card, rng) for _ in range(rng.randint(1, 4))]
        if sent % 20 == 0:
            rows = [{"no_such_feature": 1}]
        status, _ = _call(base, "POST", "/v1/predict", {"samples": rows})
        if sent % 100 == 0:
            print(f"{sent} requests sent, last status {status}", flush=True)
        time.sleep(1 / per_second)


def _sample(card: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    sample: dict[str, Any] = {}
    for feature in card["features"]:
        if feature["type"] == "number":
            span = feature.get("range") or {"min": 0.0, "max": 1.0}
            sample[feature["name"]] = round(rng.uniform(span["min"], span["max"]), 2)
        elif feature["type"] == "category":
            sample[feature["name"]] = rng.choice(feature["categories"])
        else:
            sample[feature["name"]] = feature.get("example") or "example"
    return sample


def _call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the URL is the stack's own service
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


if __name__ == "__main__":
    main()
