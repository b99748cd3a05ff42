"""`make bench`: wrk against the service with observability off (A), on (B), and on unbatched (C).

    python -m bench.run [--models iris,breast_cancer | --bundle DIR ...] [--concurrency 1,8,64]
        [--duration 10] [--repetitions 3] [--configs A,B,C] [--otlp-sink]
        [--json-out reports/bench.json]

For each model it trains (or takes) a bundle, measures the model-only floor, starts one 1-worker
service per configuration (pinned to one CPU, wrk to another where there are two), and runs wrk at
each concurrency: a warm-up per configuration, then the repetitions interleaved A, B, C, A, B, C...
The three services stay up together, idle but for the one under load, so a slow minute on a shared
machine hits every configuration alike. It prints one table per model (medians of req/s, p50,
p99), the ratios B/A and B/C (each the median of the repetitions' own ratios, so a slow minute
weighs on both sides), the floor and the issue's targets (pass/fail, informational), and
writes everything as JSON. `--configs` can add B's variants (bench/configs.py: B-traces, B-untraced,
B-prediction-log, ...), each shown over A and over B: what one part costs under wrk, with the
server and the network in the path, where `make bench-costs` measures the app alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import environment, report
from bench.bundles import TrainingError, train_bundle
from bench.configs import Config, find_configs, service_env
from bench.cpu import tree_cpu_seconds
from bench.otlp_sink import OtlpSink, SinkError, running_sink
from bench.pinning import Pinning, plan_pinning
from bench.server import Server, start_server
from bench.wrk import WrkError, WrkResult, ensure_wrk, run_wrk

DATASETS = ("iris", "breast_cancer")
STARTUP_ALLOWANCE_SECONDS = 30  # per model: training, the floor, three service starts and stops


class BenchError(Exception):
    """The benchmark cannot run (bad options, a service that does not start, wrk failing)."""


@dataclass(frozen=True)
class Model:
    """A bundle to benchmark and the one-row request body built from its card."""

    name: str
    bundle: Path
    body_file: Path


@dataclass(frozen=True)
class Plan:
    """What to run for every model, and with what."""

    configs: list[Config]
    concurrency: list[int]
    warmup: int
    duration: int
    repetitions: int
    floor_calls: int
    wrk: str
    pinning: Pinning
    otlp: OtlpSink
    work: Path


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    try:
        return _run(options)
    except (BenchError, SinkError, WrkError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1


def _run(options: argparse.Namespace) -> int:
    configs = _configs(options.configs)
    concurrency = _int_list(options.concurrency, "--concurrency")
    datasets = _datasets(options)
    for option in ("duration", "repetitions", "floor_calls"):
        if getattr(options, option) < 1:
            raise BenchError(f"--{option.replace('_', '-')} must be at least 1")
    pinning = plan_pinning()
    warmup = 0 if options.no_warmup else options.warmup
    per_model = len(concurrency) * len(configs) * (warmup + options.repetitions * options.duration)
    count = len(datasets) + len(options.bundle)
    estimate = count * (per_model + STARTUP_ALLOWANCE_SECONDS)
    print(
        f"bench: {count} model(s) x {len(configs)} configs x {len(concurrency)} concurrencies x "
        f"({options.repetitions} x {options.duration} s + {warmup} s warm-up): "
        f"about {estimate / 60:.1f} min",
        flush=True,
    )
    print(f"bench: {pinning.note}; 1 worker", flush=True)
    for config in configs:
        print(f"  {config.key}: {config.description}", flush=True)
    wrk = ensure_wrk()
    started = datetime.now(UTC)
    with ExitStack() as stack:
        work = Path(options.work_dir or stack.enter_context(_temp_dir()))
        models = _prepare_models(datasets, options.bundle, work)
        otlp = stack.enter_context(running_sink(options.otlp_sink, pinning, work))
        print(f"bench: traces: {otlp.describe()}", flush=True)
        plan = Plan(
            configs, concurrency, warmup, options.duration, options.repetitions,
            options.floor_calls, wrk, pinning, otlp, work,
        )  # fmt: skip
        blocks, results = [], []
        for model in models:
            block, result = _bench_model(model, plan)
            blocks.append(block)
            results.append(result)
        otlp_info = otlp.as_dict()
    print("\n" + "\n\n".join(blocks), flush=True)
    document = _document(plan, started, otlp_info, results)
    out = Path(options.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    errors = sum(cell["errors"] for r in results for cell in r["summary"])
    if errors:
        print(
            f"\nbench: WARNING: {errors} wrk errors (the errors column): those cells mean nothing"
        )
    received = otlp_info["received"]
    if received:
        print(
            f"\nbench: the OTLP sink received {received['requests']} export requests "
            f"({received['bytes']} bytes)"
        )
    print(f"\nbench: results in {out}", flush=True)
    return 0


def _document(
    plan: Plan, started: datetime, traces: dict[str, Any], models: list[dict[str, Any]]
) -> dict[str, Any]:
    """The JSON results: settings, commit, machine, and per model every run and summary."""
    return {
        "schema": 1,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": environment.git_state(),
        "machine": environment.machine(),
        "pinning": plan.pinning.as_dict(),
        "workers": 1,
        "load_generator": {"tool": "wrk", "threads": 1, "request": "one-row POST /v1/predict"},
        "settings": {
            "duration_seconds": plan.duration,
            "repetitions": plan.repetitions,
            "warmup_seconds": plan.warmup,
            "concurrency": plan.concurrency,
            "floor_calls": plan.floor_calls,
        },
        "configs": {
            c.key: {"description": c.description, "env": dict(c.env)} for c in plan.configs
        },
        "traces": traces,
        "models": models,
    }


def _bench_model(model: Model, plan: Plan) -> tuple[str, dict[str, Any]]:
    """Floor, services, interleaved runs; returns the printed block and the JSON record."""
    # The floor runs alone, before the services start, on the CPU the services will get: with
    # two vCPUs that may share a physical core, a starting service would slow it down.
    floor = _floor(model, plan.floor_calls, plan.pinning.server())
    print(f"bench: {model.name}: {floor['estimator']}, floor measured", flush=True)
    runs: list[report.Run] = []
    with ExitStack() as stack:
        servers = _start_servers(model, plan, stack)
        for server in servers.values():
            server.wait_ready()
        for connections in plan.concurrency:
            for config in plan.configs if plan.warmup else ():
                result, _ = _wrk_run(plan, servers[config.key], model, connections, plan.warmup)
                _report_errors(model, config, connections, "warm-up", result)
            for repetition in range(1, plan.repetitions + 1):
                for config in plan.configs:
                    server = servers[config.key]
                    result, cpu = _wrk_run(plan, server, model, connections, plan.duration)
                    runs.append(report.Run(config.key, connections, repetition, result, cpu))
                    print(
                        f"  {model.name} c={connections} rep {repetition}/{plan.repetitions} "
                        f"{config.key}: {result.requests_per_second:8.1f} req/s  "
                        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms",
                        flush=True,
                    )
                    _report_errors(model, config, connections, f"rep {repetition}", result)
    cells = report.summarize(runs)
    ratios = report.ratios(runs)
    variants = report.versus_off(runs)
    targets = report.check_targets(ratios, floor["estimator"])
    title = (
        f"== {model.name}: {floor['estimator']} ({model.bundle})\n"
        f"   1 worker; {plan.pinning.note}; medians of {plan.repetitions} x {plan.duration} s "
        f"wrk runs per cell; traces: {plan.otlp.mode}"
    )
    block = report.render_model(title, cells, ratios, variants, targets, floor)
    record = {
        "name": model.name,
        "bundle": str(model.bundle),
        "estimator": floor["estimator"],
        "floor": floor,
        **report.model_json(runs, cells, ratios, variants, targets),
    }
    return block, record


def _wrk_run(
    plan: Plan, server: Server, model: Model, connections: int, seconds: int
) -> tuple[WrkResult, float | None]:
    """One wrk run against `server`, and the CPU seconds the service spent meanwhile."""
    server.check_alive()
    before = tree_cpu_seconds(server.proc.pid)
    result = run_wrk(
        plan.wrk, f"{server.url}/v1/predict", model.body_file,
        connections=connections, seconds=seconds, pin=plan.pinning.load(),
    )  # fmt: skip
    after = tree_cpu_seconds(server.proc.pid)
    server.check_alive()
    return result, None if before is None or after is None else after - before


def _report_errors(
    model: Model, config: Config, connections: int, what: str, result: WrkResult
) -> None:
    if result.error_count:
        details = ", ".join(f"{k} {v}" for k, v in result.errors.items() if v)
        print(
            f"  WARNING {model.name} {config.key} c={connections} {what}: {details} "
            f"(of {result.requests} requests; status = non-2xx answers)",
            flush=True,
        )


def _start_servers(model: Model, plan: Plan, stack: ExitStack) -> dict[str, Server]:
    """One service per configuration, alive for the model's runs so runs can interleave (started,
    not yet ready)."""
    servers = {}
    for config in plan.configs:
        env = service_env(os.environ, config, plan.otlp.endpoint)
        log = plan.work / "logs" / f"{model.name}-{config.key}.log"
        server = start_server(model.bundle, log, env, pin=plan.pinning.server())
        stack.callback(server.stop)
        servers[config.key] = server
    return servers


def _floor(model: Model, calls: int, pin: Sequence[str]) -> dict[str, Any]:
    """The model-only floor, measured in a fresh process (pinned by `pin`)."""
    command = [
        *pin, sys.executable, "-m", "bench.floor", str(model.bundle),
        "--calls", str(calls),
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=environment.REPO
    )
    if done.returncode != 0:
        raise BenchError(f"the model-only floor failed for {model.bundle}:\n{done.stderr}")
    floor: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return floor


def _prepare_models(datasets: Sequence[str], bundles: Sequence[str], work: Path) -> list[Model]:
    models = []
    for dataset in datasets:
        out = work / "models" / dataset
        print(f"bench: training {dataset} into {out}", flush=True)
        try:
            train_bundle(dataset, out)
        except TrainingError as exc:
            raise BenchError(str(exc)) from None
        models.append(_model(dataset, out, work))
    for bundle in bundles:
        path = Path(bundle).resolve()
        taken = {m.name for m in models}
        name = path.name if path.name not in taken else f"{path.name}-{len(models) + 1}"
        models.append(_model(name, path, work))
    return models


def _model(name: str, bundle: Path, work: Path) -> Model:
    """The bundle with its one-row request: the card's example value for every feature."""
    card_path = bundle / "card.json"
    if not card_path.is_file():
        raise BenchError(f"{bundle} is not a model bundle: card.json is missing")
    card = json.loads(card_path.read_text())
    sample = {f["name"]: f.get("example") for f in card["features"]}
    missing = [k for k, v in sample.items() if v is None]
    if missing:
        raise BenchError(f"{card_path}: no example value for {', '.join(missing)}")
    body_file = work / "bodies" / f"{name}.json"
    body_file.parent.mkdir(parents=True, exist_ok=True)
    body_file.write_text(json.dumps({"samples": [sample]}))
    return Model(name=name, bundle=bundle, body_file=body_file)


@contextmanager
def _temp_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="lucidserve-bench-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _configs(text: str) -> list[Config]:
    try:
        return find_configs(text)
    except ValueError as exc:
        raise BenchError(f"--configs: {exc}") from None


def _datasets(options: argparse.Namespace) -> list[str]:
    if options.models is None:
        return [] if options.bundle else list(DATASETS)
    names = [n.strip() for n in options.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise BenchError(f"--models takes some of {','.join(DATASETS)}; got {', '.join(unknown)}")
    return names


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise BenchError(f"{option} takes positive integers separated by commas; got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="wrk benchmark of observability off (A), on (B), on without batching (C).",
    )
    parser.add_argument("--models", help=f"datasets to train (default: {','.join(DATASETS)})")
    parser.add_argument("--bundle", action="append", default=[], help="a bundle dir (repeatable)")
    parser.add_argument(
        "--configs",
        default="A,B,C",
        help="configurations to run (default A,B,C); also B's variants, e.g. B-traces, B-untraced: "
        "each is then shown over A and over B",
    )
    parser.add_argument("--concurrency", default="1,8,64", help="wrk connections (default 1,8,64)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--repetitions", type=int, default=3, help="runs per cell (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds (default 2)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up runs")
    parser.add_argument("--floor-calls", type=int, default=200, help="timed model-only calls")
    parser.add_argument("--otlp-sink", action="store_true", help="export traces to a local sink")
    parser.add_argument("--json-out", default="reports/bench.json", help="the JSON results file")
    parser.add_argument("--work-dir", help="keep bundles and service logs here (default: temp)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
