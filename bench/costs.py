"""`make bench-costs`: what each part of observability costs, in CPU time per request.

    python -m bench.costs [--dataset breast_cancer | --bundle DIR] [--requests 15000]
        [--repetitions 5] [--concurrency 64] [--json-out reports/costs.json]

wrk's throughput (`make bench`) says how much observability costs in all; this says where. The app
is driven in-process (bench/inprocess.py: no server, no network, so the figures are the app's own)
in configuration A (observability off), B (the defaults), B with every request traced, and B with
one part switched off at a time. Each run is a fresh process pinned to one CPU; the runs are
interleaved, and the table gives medians. A part's cost is B's CPU per request minus that of B
without it; the cost of a traced request is B-all-traced minus B, divided by the share of requests
B does not trace. On a shared machine single runs vary by 10 µs or more: compare medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import environment
from bench.bundles import TrainingError, train_bundle
from bench.configs import OBSERVABILITY_OFF, Config, service_env
from bench.pinning import plan_pinning

DEFAULT_TRACE_RATIO = 0.1  # lucidserve.observability.tracing.DEFAULT_SAMPLE_RATIO, the B default

CONFIGS = (
    OBSERVABILITY_OFF,
    Config("B", "the defaults"),
    Config("B-traced", "B with every request traced", {"OTEL_TRACES_SAMPLER_ARG": "1"}),
    Config("B-untraced", "B with no request traced", {"OTEL_TRACES_SAMPLER_ARG": "0"}),
    Config("B-traces", "B without traces", {"OTEL_SDK_DISABLED": "true"}),
    Config(
        "B-prediction-log", "B without prediction lines", {"LUCIDSERVE_PREDICTION_LOG": "false"}
    ),
    Config("B-access-log", "B without access lines", {"LUCIDSERVE_ACCESS_LOG_SAMPLE_RATIO": "0"}),
    Config("B-drift", "B without drift", {"LUCIDSERVE_DRIFT_ENABLED": "false"}),
    Config(
        "B-metrics",
        "B without metrics (drift needs them: off too)",
        {"LUCIDSERVE_METRICS_ENABLED": "false"},
    ),
)
PARTS = {
    "B-traces": "traces (10 % sampled)",
    "B-prediction-log": "prediction lines (with input hash)",
    "B-access-log": "access lines",
    "B-drift": "drift",
    "B-metrics": "metrics and drift",
}


class CostsError(Exception):
    """A run failed."""


@dataclass(frozen=True)
class Row:
    """One configuration's CPU per request over the repetitions."""

    config: Config
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configs = [c for c in CONFIGS if c.key in set(args.configs.split(","))]
    if {"A", "B"} - {c.key for c in configs}:
        print("bench.costs: --configs must include A and B", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lucidserve-costs-") as work:
        try:
            if args.bundle:
                bundle = Path(args.bundle).resolve()
            else:
                bundle = Path(work) / "models" / args.dataset
                print(f"bench.costs: training {args.dataset} into {bundle}", flush=True)
                train_bundle(args.dataset, bundle)
            rows = _measure(bundle, configs, args, Path(work))
        except (CostsError, TrainingError) as exc:
            print(f"bench.costs: {exc}", file=sys.stderr)
            return 1
    print()
    print("\n".join(render(bundle, rows, args.requests, args.concurrency)))
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(as_json(bundle, rows, args), indent=2) + "\n")
    print(f"\nbench.costs: results in {out}")
    return 0


def render(bundle: Path, rows: Sequence[Row], requests: int, concurrency: int) -> list[str]:
    """The table: each configuration's median CPU per request, and what each part costs."""
    by_key = {r.config.key: r for r in rows}
    a, b = by_key["A"].median, by_key["B"].median
    lines = [
        f"== {bundle.name}: CPU µs per request, app in-process, {requests} requests at "
        f"concurrency {concurrency}, median of {len(rows[0].runs)} runs",
        "",
        f"{'config':18} {'µs/request':>10}  {'vs B':>7}  runs",
    ]
    for row in rows:
        delta = f"{row.median - b:+7.1f}" if row.config.key != "B" else "      -"
        runs = " ".join(f"{v:.0f}" for v in row.runs)
        lines.append(f"{row.config.key:18} {row.median:10.1f}  {delta}  {runs}")
    total = f"observability in all (B - A): {b - a:.1f} µs per request (throughput B/A {a / b:.2f})"
    lines += ["", total]
    for part, cost in part_costs(rows).items():
        lines.append(f"  {part:40} {cost:6.1f} µs per request")
    for part, cost in tracing_split(rows).items():
        lines.append(f"    {part:38} {cost:6.1f} µs per request")
    traced = traced_request_cost(rows)
    if traced is not None:
        lines.append(f"  {'one traced request, over an untraced one':40} {traced:6.1f} µs")
    return lines


def part_costs(rows: Sequence[Row]) -> dict[str, float]:
    """Each part's cost: B minus B without it (configurations not run are left out)."""
    by_key = {r.config.key: r.median for r in rows}
    return {label: by_key["B"] - by_key[key] for key, label in PARTS.items() if key in by_key}


def tracing_split(rows: Sequence[Row]) -> dict[str, float]:
    """The traces' cost in two: the machinery every request pays, and the traced requests' own."""
    by_key = {r.config.key: r.median for r in rows}
    if not {"B-untraced", "B-traces"} <= set(by_key):
        return {}
    return {
        "of which every request (no span made)": by_key["B-untraced"] - by_key["B-traces"],
        "of which the traced requests' spans": by_key["B"] - by_key["B-untraced"],
    }


def traced_request_cost(rows: Sequence[Row]) -> float | None:
    """What tracing one request costs, from B (10 % traced) and B with every request traced."""
    by_key = {r.config.key: r.median for r in rows}
    if "B-traced" not in by_key:
        return None
    return (by_key["B-traced"] - by_key["B"]) / (1.0 - DEFAULT_TRACE_RATIO)


def as_json(bundle: Path, rows: Sequence[Row], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": environment.git_state(),
        "machine": environment.machine(),
        "bundle": str(bundle),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "configs": {
            r.config.key: {
                "description": r.config.description,
                "env": dict(r.config.env),
                "cpu_us_per_request": r.runs,
                "median": r.median,
            }
            for r in rows
        },
        "part_costs_us": part_costs(rows),
        "tracing_split_us": tracing_split(rows),
        "traced_request_us": traced_request_cost(rows),
    }


def _measure(
    bundle: Path, configs: Sequence[Config], args: argparse.Namespace, work: Path
) -> list[Row]:
    pinned = plan_pinning().server()
    runs: dict[str, list[float]] = {c.key: [] for c in configs}
    for repetition in range(1, args.repetitions + 1):
        for config in configs:
            value = _run_once(bundle, config, args, work, pinned)
            runs[config.key].append(value)
            print(
                f"  rep {repetition}/{args.repetitions} {config.key:18} {value:8.1f} µs/request",
                flush=True,
            )
    return [Row(c, runs[c.key]) for c in configs]


def _run_once(
    bundle: Path, config: Config, args: argparse.Namespace, work: Path, pinned: list[str]
) -> float:
    out = work / f"{config.key}.json"
    env = service_env(os.environ, config, otlp_endpoint=None)
    command = [
        *pinned, sys.executable, "-m", "bench.inprocess", str(bundle),
        "--requests", str(args.requests), "--warmup", str(args.warmup),
        "--concurrency", str(args.concurrency), "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, cwd=environment.REPO, capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip
    if done.returncode != 0 or not out.is_file():
        raise CostsError(f"{config.key} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: Mapping[str, Any] = json.loads(out.read_text())
    return float(result["cpu_us_per_request"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__)
    parser.add_argument("--dataset", default="breast_cancer", help="dataset to train (default)")
    parser.add_argument("--bundle", help="a bundle directory instead of a trained dataset")
    parser.add_argument("--configs", default=",".join(c.key for c in CONFIGS), help="subset")
    parser.add_argument("--requests", type=int, default=15_000, help="timed requests per run")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed requests first")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent callers")
    parser.add_argument("--repetitions", type=int, default=5, help="runs per configuration")
    parser.add_argument("--json-out", default="reports/costs.json", help="the JSON results file")
    return parser


if __name__ == "__main__":
    sys.exit(main())
