"""`make bench-costs`: what each part of observability costs, in CPU time per request.

    python -m bench.costs [--dataset breast_cancer | --bundle DIR] [--requests 15000]
        [--repetitions 5] [--concurrency 64] [--instructions] [--otlp-sink]
        [--json-out reports/costs.json]

wrk's throughput (`make bench`) says how much observability costs in all; this says where. The app
is driven in-process (bench/inprocess.py: no server, no network, so the figures are the app's own)
in configuration A (observability off), B (the defaults), B with every request traced, and B with
one part switched off at a time. Each run is a fresh process pinned to one CPU; the runs are
interleaved, and the table gives medians. A part's cost is B's CPU per request minus that of B
without it; the cost of a traced request is B-all-traced minus B, divided by the share of requests
B does not trace. On a shared machine single runs vary by 10 µs or more: compare medians.

With --instructions, the measure is instructions executed instead of CPU time (bench/
instructions.py: valgrind, installed when absent): per configuration, two runs that differ by
--requests requests (default 2,000), counted in thousands per request. Noise does not move it, so
one repetition is enough and a commit's figures compare with another's; a run takes about 15 min.

Sampled spans are made but not exported, as with the service's default (no OTLP endpoint), unless
--otlp-sink starts a local OTLP/HTTP sink (bench/otlp_sink.py) for the app to export to: then a
traced request's cost includes the exporter's encoding of its spans, on the app's CPU.
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
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import environment, instructions
from bench.bundles import TrainingError, train_bundle
from bench.configs import (
    OBSERVABILITY_OFF,
    OBSERVABILITY_ON,
    VARIANTS,
    Config,
    find_configs,
    service_env,
)
from bench.debian import MissingCommandError
from bench.instructions import CountError, per_unit
from bench.otlp_sink import SinkError, running_sink
from bench.pinning import plan_pinning
from lucidserve.observability.tracing import DEFAULT_SAMPLE_RATIO  # B's ratio

BASE_REQUESTS = 200  # the smaller of the two counted runs, in --instructions mode
RUN_TIMEOUT_SECONDS = 1800

CONFIGS = (OBSERVABILITY_OFF, OBSERVABILITY_ON, *VARIANTS)
PARTS = {
    "B-traces": f"traces ({DEFAULT_SAMPLE_RATIO * 100:g} % sampled)",
    "B-prediction-log": "prediction lines (with input hash)",
    "B-access-log": "access lines",
    "B-drift": "drift",
    "B-metrics": "metrics and drift",
}


class CostsError(Exception):
    """A run failed."""


@dataclass(frozen=True)
class Unit:
    """What a figure counts: CPU time, or instructions executed."""

    key: str
    symbol: str
    measure: str


CPU_TIME = Unit("us", "µs", "CPU µs")
INSTRUCTIONS = Unit("k_instructions", "k instr", "thousands of instructions")


@dataclass(frozen=True)
class Row:
    """One configuration's cost per request over the repetitions."""

    config: Config
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    unit = INSTRUCTIONS if args.instructions else CPU_TIME
    if args.requests is None:
        args.requests = 2_000 if args.instructions else 15_000
    if args.repetitions is None:
        args.repetitions = 1 if args.instructions else 5
    try:
        configs = find_configs(args.configs)
    except ValueError as exc:
        print(f"bench.costs: --configs: {exc}", file=sys.stderr)
        return 2
    if {"A", "B"} - {c.key for c in configs}:
        print("bench.costs: --configs must include A and B", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lucidserve-costs-") as work, ExitStack() as stack:
        try:
            sink = stack.enter_context(running_sink(args.otlp_sink, plan_pinning(), Path(work)))
            print(f"bench.costs: traces: {sink.describe()}", flush=True)
            if args.bundle:
                bundle = Path(args.bundle).resolve()
            else:
                bundle = Path(work) / "models" / args.dataset
                print(f"bench.costs: training {args.dataset} into {bundle}", flush=True)
                train_bundle(args.dataset, bundle)
            if args.instructions:
                rows = _count(bundle, configs, args, Path(work), sink.endpoint)
            else:
                rows = _measure(bundle, configs, args, Path(work), sink.endpoint)
            traces = sink.as_dict()
        except (CostsError, CountError, MissingCommandError, SinkError, TrainingError) as exc:
            print(f"bench.costs: {exc}", file=sys.stderr)
            return 1
    print()
    print("\n".join(render(bundle, rows, args.requests, args.concurrency, unit)))
    print(f"\nspans: {traces['mode']}" + (f", {traces['received']}" if traces["received"] else ""))
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {**as_json(bundle, rows, args, unit), "traces": traces}
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nbench.costs: results in {out}")
    return 0


def render(
    bundle: Path,
    rows: Sequence[Row],
    requests: int,
    concurrency: int,
    unit: Unit = CPU_TIME,
) -> list[str]:
    """The table: each configuration's median cost per request, and what each part costs."""
    by_key = {r.config.key: r for r in rows}
    a, b = by_key["A"].median, by_key["B"].median
    per = unit.symbol
    lines = [
        f"== {bundle.name}: {unit.measure} per request, app in-process, {requests} requests at "
        f"concurrency {concurrency}, median of {len(rows[0].runs)} runs",
        "",
        f"{'config':18} {per + '/request':>14}  {'vs B':>7}  runs",
    ]
    for row in rows:
        delta = f"{row.median - b:+7.1f}" if row.config.key != "B" else "      -"
        runs = " ".join(f"{v:.0f}" for v in row.runs)
        lines.append(f"{row.config.key:18} {row.median:14.1f}  {delta}  {runs}")
    total = (
        f"observability in all (B - A): {b - a:.1f} {per} per request "
        f"(throughput B/A about {a / b:.2f})"
    )
    lines += ["", total]
    for part, cost in part_costs(rows).items():
        lines.append(f"  {part:40} {cost:6.1f} {per} per request")
    for part, cost in tracing_split(rows).items():
        lines.append(f"    {part:38} {cost:6.1f} {per} per request")
    traced = traced_request_cost(rows)
    if traced is not None:
        lines.append(f"  {'one traced request, over an untraced one':40} {traced:6.1f} {per}")
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
    """What tracing one request costs, from B (DEFAULT_SAMPLE_RATIO traced) and B with every
    request traced."""
    by_key = {r.config.key: r.median for r in rows}
    if "B-traced" not in by_key:
        return None
    return (by_key["B-traced"] - by_key["B"]) / (1.0 - DEFAULT_SAMPLE_RATIO)


def as_json(
    bundle: Path, rows: Sequence[Row], args: argparse.Namespace, unit: Unit = CPU_TIME
) -> dict[str, Any]:
    """The results; every cost is per request, in `unit` ("us": CPU µs; "k_instructions")."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": environment.git_state(),
        "machine": environment.machine(),
        "bundle": str(bundle),
        "unit": unit.key,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "configs": {
            r.config.key: {
                "description": r.config.description,
                "env": dict(r.config.env),
                "per_request": r.runs,
                "median": r.median,
            }
            for r in rows
        },
        "part_costs": part_costs(rows),
        "tracing_split": tracing_split(rows),
        "traced_request": traced_request_cost(rows),
    }


def _measure(
    bundle: Path,
    configs: Sequence[Config],
    args: argparse.Namespace,
    work: Path,
    otlp_endpoint: str | None,
) -> list[Row]:
    pinned = plan_pinning().server()
    runs: dict[str, list[float]] = {c.key: [] for c in configs}
    for repetition in range(1, args.repetitions + 1):
        for config in configs:
            value = _run_once(bundle, config, args, work, pinned, otlp_endpoint)
            runs[config.key].append(value)
            print(
                f"  rep {repetition}/{args.repetitions} {config.key:18} {value:8.1f} µs/request",
                flush=True,
            )
    return [Row(c, runs[c.key]) for c in configs]


def _count(
    bundle: Path,
    configs: Sequence[Config],
    args: argparse.Namespace,
    work: Path,
    otlp_endpoint: str | None,
) -> list[Row]:
    """Thousands of instructions per request: two counted runs per configuration and repetition
    (as many at once as there are CPUs: a count does not depend on the machine's load)."""
    by_key = {c.key: c for c in configs}
    jobs = [
        (config.key, repetition, requests)
        for repetition in range(1, args.repetitions + 1)
        for config in configs
        for requests in (BASE_REQUESTS, BASE_REQUESTS + args.requests)
    ]

    def count(job: tuple[str, int, int]) -> int:
        key, repetition, requests = job
        out = work / f"{key}-{repetition}-{requests}.json"
        command = _inprocess_command(bundle, requests, args, out)
        env = service_env(os.environ, by_key[key], otlp_endpoint)
        total = instructions.count_instructions(command, env, environment.REPO, RUN_TIMEOUT_SECONDS)
        print(f"  {key:18} rep {repetition} {requests:6} requests: {total:,} instructions")
        return total

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = dict(zip(jobs, pool.map(count, jobs), strict=True))
    runs: dict[str, list[float]] = {c.key: [] for c in configs}
    for key, repetition, requests in jobs:
        if requests == BASE_REQUESTS:
            small = totals[(key, repetition, requests)]
            large = totals[(key, repetition, requests + args.requests)]
            runs[key].append(per_unit(small, large, args.requests) / 1000.0)
    return [Row(c, runs[c.key]) for c in configs]


def _inprocess_command(
    bundle: Path, requests: int, args: argparse.Namespace, out: Path
) -> list[str]:
    return [
        sys.executable, "-m", "bench.inprocess", str(bundle), "--requests", str(requests),
        "--warmup", str(args.warmup), "--concurrency", str(args.concurrency), "--out", str(out),
    ]  # fmt: skip


def _run_once(
    bundle: Path,
    config: Config,
    args: argparse.Namespace,
    work: Path,
    pinned: list[str],
    otlp_endpoint: str | None,
) -> float:
    out = work / f"{config.key}.json"
    env = service_env(os.environ, config, otlp_endpoint)
    command = [*pinned, *_inprocess_command(bundle, args.requests, args, out)]
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
    parser.add_argument(
        "--requests", type=int, help="measured requests per run (15,000; --instructions 2,000)"
    )
    parser.add_argument("--warmup", type=int, default=2_000, help="unmeasured requests first")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent callers")
    parser.add_argument(
        "--repetitions", type=int, help="runs per configuration (5; --instructions 1)"
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (valgrind), not CPU time"
    )
    parser.add_argument(
        "--otlp-sink", action="store_true", help="export sampled spans to a local OTLP/HTTP sink"
    )
    parser.add_argument("--json-out", default="reports/costs.json", help="the JSON results file")
    return parser


if __name__ == "__main__":
    sys.exit(main())
