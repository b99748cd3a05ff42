"""The app driven in-process: CPU time per /v1/predict request, without a server or a network.

    python -m bench.inprocess BUNDLE --requests N --warmup N --concurrency C --out RESULT.json

Configured by the environment, as `lucidserve serve` is (LUCIDSERVE_*, OTEL_*). Runs the app's
lifespan, waits for the model, sends `warmup` requests, then `requests` more from `concurrency`
concurrent callers through the ASGI interface, and writes the process CPU time (every thread:
the event loop, inference and the log writer) per request. JSON log lines go to /dev/null, through
the same background writer as in a serving worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message

READY_TIMEOUT_SECONDS = 120.0


async def drive(app: ASGIApp, body: bytes, requests: int, concurrency: int) -> list[int]:
    """Send `requests` POST /v1/predict with `body` from `concurrency` callers; their statuses."""
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    statuses: list[int] = []
    left = requests

    async def one() -> None:
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/predict",
            "raw_path": b"/v1/predict",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        await app(scope, receive, send)

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one()

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return statuses


async def measure(bundle: Path, requests: int, warmup: int, concurrency: int) -> dict[str, Any]:
    """CPU and wall time per request for the bundle, in the configuration of the environment."""
    from lucidserve.app import create_app
    from lucidserve.observability.logging import configure_logging
    from lucidserve.settings import Settings

    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the log lines' sink for the whole run
    pipeline = configure_logging("INFO", asynchronous=True)
    app = create_app(Settings(model_dir=bundle))
    card = json.loads((bundle / "card.json").read_text())
    body = json.dumps({"samples": [{f["name"]: f["example"] for f in card["features"]}]}).encode()
    try:
        async with app.router.lifespan_context(app):
            deadline = time.monotonic() + READY_TIMEOUT_SECONDS
            while app.state.runtime.queue is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the model in {bundle} did not get ready")
                await asyncio.sleep(0.05)
            await drive(app, body, warmup, concurrency)
            cpu, wall = time.process_time(), time.perf_counter()
            statuses = await drive(app, body, requests, concurrency)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        pipeline.close()
    failed = len([s for s in statuses if s != 200])
    return {
        "requests": len(statuses),
        "failed": failed,
        "cpu_us_per_request": 1e6 * cpu / requests,
        "wall_us_per_request": 1e6 * wall / requests,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--requests", type=int, default=15_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.bundle, args.requests, args.warmup, args.concurrency))
    args.out.write_text(json.dumps(result))
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
