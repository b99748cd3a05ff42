"""What one build of the model page costs, with N observations in the drift window.

    .venv/bin/python -m tests.support.page_cost [--observations 1000000] [--multiprocess]

The page is assembled from the same parts create_app wires (the iris model's card, a DriftMonitor,
the metrics registry /metrics reads), the window is filled through `DriftMonitor.observe` in
batches of 1,000 rows spread over the window's slots, and the request histogram gets a few
thousand observations on four routes. With --multiprocess, the metrics and the window live in
files as with several workers, and every build merges them the way a /metrics scrape does.
Prints the median and the slowest of the timed builds, in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--multiprocess", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="page-cost-") as tmp:
        if args.multiprocess:
            # prometheus_client picks its mode from this variable when first imported: set it first.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(tmp, "metrics"))
            Path(tmp, "metrics").mkdir()
        build, in_window = _page_builder(Path(tmp), args.observations)
        build()  # the first build imports and warms what later ones reuse
        seconds = []
        for _ in range(args.repetitions):
            start = time.perf_counter()
            size = len(build())
            seconds.append(time.perf_counter() - start)
    mode = "multiprocess (files)" if args.multiprocess else "one process"
    print(
        f"model page, {in_window:,} observations in the window, {mode}: "
        f"median {statistics.median(seconds) * 1000:.1f} ms, "
        f"slowest {max(seconds) * 1000:.1f} ms over {args.repetitions} builds; {size:,} bytes"
    )
    return 0


def _page_builder(tmp: Path, observations: int) -> tuple[Callable[[], bytes], int]:
    import numpy as np

    from lucidserve.api.pages import CACHE_SECONDS, model_page_builder
    from lucidserve.bundle.schema import build_schemas
    from lucidserve.bundle.train import train
    from lucidserve.observability.recording import build_observability
    from lucidserve.runtime import Runtime
    from lucidserve.server import multiprocess
    from lucidserve.settings import Settings
    from tests.support.iris_traffic import as_columns, iris_rows

    card = train("iris", tmp / "iris")
    settings = Settings(model_dir=tmp / "iris", access_log_sample_ratio=0.0)
    clock = [time.time() - settings.drift_window_seconds * 0.98]
    observability = build_observability(
        settings,
        card,
        shared_directory=multiprocess.shared_directory(),
        events=None,
        clock=lambda: clock[0],
    )
    monitor = observability.drift
    assert monitor is not None
    exposition = observability.exposition
    schemas = build_schemas(card, max_batch_rows=1000, max_text_length=1000)
    runtime = Runtime(settings, card, schemas, observability, api_keys=())

    rows = iris_rows(observations, seed=7)
    labels = np.asarray(card.classes, dtype=object)[np.arange(observations) % 3]
    batches = range(0, observations, 1000)
    step = settings.drift_window_seconds * 0.97 / max(len(batches), 1)
    for start in batches:
        monitor.observe(as_columns(rows[start : start + 1000]), labels[start : start + 1000])
        clock[0] += step
    for i in range(4000):
        route, status = [("/v1/predict", 200), ("/v1/model", 200), ("/healthz", 200)][i % 3]
        scope = {"path": route, "client": None}
        observability.request_started("POST")
        observability.record_request(scope, "POST", route, status, 0.001 + (i % 50) / 10_000, "")
    observability.request_started("POST")
    observability.record_request({"path": "/v1/predict"}, "POST", "/v1/predict", 503, 0.2, "")
    in_window = int(monitor.summary()["features"]["sepal_length"]["observations"])
    build = model_page_builder(runtime, exposition, time.time() - 3600, CACHE_SECONDS, time.time)
    return build, in_window


if __name__ == "__main__":
    sys.exit(main())
