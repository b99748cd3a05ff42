"""The model-only floor: what `predict_proba` alone costs per row, with no service around it.

    python -m bench.floor BUNDLE_DIR [--calls N]

Loads the bundle in-process, builds rows from the card's example values, and prints one JSON
object: per batch size (1 and 64 rows), the median milliseconds per call over N calls and
microseconds per row, and apart from it the median time the service takes to build the estimator's
input from the validated columns (a 2-D array, or for a model fitted on a DataFrame the
DataFrame). The benchmark runs it in its own process, pinned to one CPU, as the service's single
worker is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lucidserve.bundle.inputs import ModelInput
from lucidserve.bundle.store import load_bundle

ROWS = (1, 64)
WARMUP_CALLS = 5


def measure_floor(bundle_dir: Path, calls: int, row_counts: Sequence[int]) -> dict[str, Any]:
    """Median `predict_proba` (or `predict`) time per call and per row for each row count."""
    bundle = load_bundle(bundle_dir)
    estimator = bundle.estimator
    predict = getattr(estimator, "predict_proba", None) or estimator.predict
    example = {f.name: f.example for f in bundle.card.features}
    model_input = ModelInput(bundle.card.features, bundle.card.input_format)
    results = []
    for rows in row_counts:
        columns = [_column(example[f.name], f.type, rows) for f in bundle.card.features]
        x = model_input(columns)
        for _ in range(WARMUP_CALLS):
            predict(x)
        per_call = _median_seconds(predict, x, calls)
        per_input = _median_seconds(model_input, columns, calls)
        results.append(
            {
                "rows": rows,
                "calls": calls,
                "ms_per_call": per_call * 1e3,
                "us_per_row": per_call * 1e6 / rows,
                "input_ms_per_call": per_input * 1e3,
            }
        )
    return {
        "estimator": describe_estimator(estimator),
        "method": "predict_proba" if hasattr(estimator, "predict_proba") else "predict",
        "batches": results,
    }


def _median_seconds(call: Callable[[Any], object], argument: Any, calls: int) -> float:
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        call(argument)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def describe_estimator(estimator: Any) -> str:
    """The estimator's class name; a pipeline lists its steps' classes."""
    steps = getattr(estimator, "steps", None)
    if steps:
        return "Pipeline(" + ", ".join(type(step).__name__ for _, step in steps) + ")"
    return type(estimator).__name__


def _column(value: Any, kind: str, rows: int) -> np.ndarray:
    if kind == "number":
        return np.full(rows, float(value), dtype=np.float64)
    return np.array([value] * rows, dtype=object)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--calls", type=int, default=200, help="timed calls per batch size")
    options = parser.parse_args(argv)
    print(json.dumps(measure_floor(options.bundle, options.calls, ROWS)))


if __name__ == "__main__":
    main()
