"""`make bench`: wrk against the service with observability off (A), on (B), on unbatched (C), and
B's variants; the layout of the tables and the choices behind them are in bench/README.md.

    python -m bench.run [--models iris,breast_cancer,churn | --bundle DIR ...]
        [--concurrency 1,8,64] [--duration 10] [--repetitions 3] [--configs A,B,C] [--otlp-sink]
        [--json-out reports/bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import frame_pipeline, machine, report
from bench.configs import CONTROLLED_PREFIXES, TARGETS, Config, find_configs, service_env
from bench.cpu import tree_cpu_seconds
from bench.wrk import WrkError, WrkResult, find_wrk, run_wrk
from tests.support.otlp import OtlpReceiver
from tests.support.processes import BIN, Service, start_service

DATASETS = ("iris", "breast_cancer")  # trained by `lucidserve train`
BUILT = (frame_pipeline.NAME,)  # built and packaged by the bench, each with an array twin
MODELS = (*DATASETS, *BUILT)
STARTUP_ALLOWANCE_SECONDS = 30  # per model: training, the floor, the services' starts and stops
READY_TIMEOUT_SECONDS = 120.0


class BenchError(Exception):
    """The benchmark cannot run (bad options, a service that does not start, wrk failing)."""


@dataclass(frozen=True)
class Model:
    """A bundle to benchmark and the one-row request body built from its card."""

    name: str
    bundle: Path
    body_file: Path
    v2_body_file: Path
    card_name: str
    twin: Model | None = None
    """The same pipeline fitted on an array: every configuration runs on it too, interleaved, as
    the configuration's key with report.TWIN_SUFFIX (its cells are compared in the twins table)."""

    def request(self, config: Config) -> tuple[str, Path]:
        """The path and body of the one-row request `config` sends."""
        if config.protocol == "v2":
            return f"/v2/models/{self.card_name}/infer", self.v2_body_file
        return "/v1/predict", self.body_file

    def services(self, configs: Sequence[Config]) -> list[tuple[str, Config, Model]]:
        """Each measured service: its key in the tables, its configuration and its bundle."""
        services: list[tuple[str, Config, Model]] = []
        for config in configs:
            services.append((config.key, config, self))
            if self.twin is not None:
                services.append((config.key + report.TWIN_SUFFIX, config, self.twin))
        return services


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
    pinning: machine.Pinning
    otlp: OtlpReceiver | None
    work: Path


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    try:
        return _run(options)
    except (BenchError, WrkError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1


def _run(options: argparse.Namespace) -> int:
    try:
        configs = find_configs(options.configs)
        concurrency = [int(part) for part in options.concurrency.split(",") if part.strip()]
    except ValueError as exc:
        raise BenchError(f"--configs or --concurrency: {exc}") from None
    if not concurrency or min(concurrency) < 1:
        raise BenchError("--concurrency takes positive integers separated by commas")
    for option in ("duration", "repetitions", "floor_calls"):
        if getattr(options, option) < 1:
            raise BenchError(f"--{option.replace('_', '-')} must be at least 1")
    if options.warmup < 0:
        raise BenchError("--warmup must not be negative")
    datasets = _datasets(options)
    if not datasets and not options.bundle:
        raise BenchError("no model: --models names none and no --bundle is given")
    wrk = find_wrk()
    # The services inherit this environment plus their configuration's variables: the caller's
    # own service settings would change every configuration alike, and hide the differences.
    for key in [k for k in os.environ if k.startswith(CONTROLLED_PREFIXES)]:
        del os.environ[key]
    pinning = machine.plan_pinning()
    if pinning.load_cpu is not None:  # this process (the OTLP sink's thread) sits with wrk
        os.sched_setaffinity(0, {pinning.load_cpu})
    warmup = options.warmup  # seconds per configuration and concurrency, unmeasured
    count = len(datasets) + len(options.bundle)
    services = count + len([d for d in datasets if d in BUILT])  # with the array twins
    per_model = len(concurrency) * len(configs) * (warmup + options.repetitions * options.duration)
    print(
        f"bench: {count} model(s) (and {services - count} array twin(s)) x {len(configs)} configs "
        f"x {len(concurrency)} concurrencies x ({options.repetitions} x {options.duration} s + "
        f"{warmup} s warm-up): about {services * (per_model + STARTUP_ALLOWANCE_SECONDS) / 60:.1f} "
        "min\n"
        f"bench: {pinning.note}; 1 worker",
        flush=True,
    )
    for config in configs:
        print(f"  {config.key}: {config.description}", flush=True)
    started = datetime.now(UTC)
    with ExitStack() as stack:
        work = Path(
            options.work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-"))
        )
        otlp = OtlpReceiver(decode=False).start() if options.otlp_sink else None
        if otlp is not None:
            stack.callback(otlp.stop)
        print(f"bench: traces: {_traces(otlp)['mode']}", flush=True)
        plan = Plan(
            configs, concurrency, warmup, options.duration, options.repetitions,
            options.floor_calls, wrk, pinning, otlp, work,
        )  # fmt: skip
        models = _prepare_models(datasets, options.bundle, work)
        blocks, results = zip(*(_bench_model(model, plan) for model in models), strict=True)
        traces = _traces(otlp)
    print("\n" + "\n\n".join(blocks), flush=True)
    document = {
        "schema": 2,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        **machine.describe(pinning),
        "workers": 1,
        "load_generator": {
            "tool": "wrk",
            "threads": 1,
            "request": "one-row POST /v1/predict (B-v2: /v2/models/{name}/infer)",
        },
        "settings": {
            "duration_seconds": plan.duration,
            "repetitions": plan.repetitions,
            "warmup_seconds": plan.warmup,
            "concurrency": plan.concurrency,
            "floor_calls": plan.floor_calls,
        },
        "configs": {c.key: {"description": c.description, "env": dict(c.env)} for c in configs},
        "targets": [asdict(t) for t in TARGETS],
        "traces": traces,
        "models": list(results),
    }
    out = Path(options.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    errors = sum(row["errors"] for r in results for row in r["summary"])
    if errors:
        print(
            f"\nbench: WARNING: {errors} wrk errors (the errors column): those cells mean nothing"
        )
    if traces["received"]:
        received = traces["received"]
        print(
            f"\nbench: the OTLP sink received {received['requests']} exports, {received['bytes']} B"
        )
    print(f"\nbench: results in {out}", flush=True)
    return 0


def _traces(otlp: OtlpReceiver | None) -> dict[str, Any]:
    """Where the traced configurations' spans went, and what the sink received."""
    if otlp is None:
        return {"mode": "no OTLP endpoint (spans recorded, not exported)", "received": None}
    return {
        "mode": f"exported to a local OTLP/HTTP sink at {otlp.endpoint}",
        "received": {"requests": otlp.requests, "bytes": otlp.bytes},
    }


def _bench_model(model: Model, plan: Plan) -> tuple[str, dict[str, Any]]:
    """Floor, services, interleaved runs; returns the printed block and the JSON record."""
    # The floor runs alone, before the services start, on the CPU the services will get: with
    # two vCPUs that may share a physical core, a starting service would slow it down.
    floor = _floor(model, plan)
    print(f"bench: {model.name}: {floor['estimator']}, floor measured", flush=True)
    runs: list[report.Run] = []
    services = model.services(plan.configs)
    with ExitStack() as stack:
        servers = _start_servers(model, services, plan, stack)
        for connections in plan.concurrency:
            for key, config, bundle in services if plan.warmup else ():
                result, _ = _wrk_run(plan, servers[key], bundle, config, connections, plan.warmup)
                _report_errors(model, key, connections, "warm-up", result)
            for repetition in range(1, plan.repetitions + 1):
                for key, config, bundle in services:
                    server = servers[key]
                    result, cpu = _wrk_run(plan, server, bundle, config, connections, plan.duration)
                    runs.append(report.Run(key, connections, repetition, result, cpu))
                    print(
                        f"  {model.name} c={connections} rep {repetition}/{plan.repetitions} "
                        f"{key}: {result.requests_per_second:8.1f} req/s  "
                        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms",
                        flush=True,
                    )
                    _report_errors(model, key, connections, f"rep {repetition}", result)
    tables = report.tables(runs, model.name, TARGETS)
    title = (
        f"== {model.name}: {floor['estimator']} ({model.bundle})\n"
        f"   1 worker; {plan.pinning.note}; medians of {plan.repetitions} x {plan.duration} s "
        f"wrk runs per cell; traces: {_traces(plan.otlp)['mode']}"
    )
    record = {"name": model.name, "bundle": str(model.bundle), "floor": floor, **tables}
    twin_floor = None
    if model.twin is not None:
        twin_floor = _floor(model.twin, plan)
        record["twin"] = {"bundle": str(model.twin.bundle), "floor": twin_floor}
        title += f"\n   array twin ({report.TWIN_SUFFIX}): {model.twin.bundle}"
    return report.render_model(title, tables, floor, twin_floor), record


def _wrk_run(
    plan: Plan, server: Service, model: Model, config: Config, connections: int, seconds: int
) -> tuple[WrkResult, float | None]:
    """One wrk run against `server`, and the CPU seconds the service spent meanwhile."""
    _check_alive(server)
    before = tree_cpu_seconds(server.pid)
    path, body = model.request(config)
    result = run_wrk(
        plan.wrk, f"{server.url}{path}", body,
        connections=connections, seconds=seconds, pin=plan.pinning.load(),
    )  # fmt: skip
    after = tree_cpu_seconds(server.pid)
    _check_alive(server)
    return result, None if before is None or after is None else after - before


def _check_alive(server: Service) -> None:
    if server.proc.poll() is not None:
        raise BenchError(
            f"a service exited with {server.proc.returncode}:\n{server.output()[-3000:]}"
        )


def _report_errors(model: Model, key: str, connections: int, what: str, result: WrkResult) -> None:
    if result.error_count:
        details = ", ".join(f"{k} {v}" for k, v in result.errors.items() if v)
        print(
            f"  WARNING {model.name} {key} c={connections} {what}: {details} "
            f"(of {result.requests} requests; status = non-2xx answers)",
            flush=True,
        )


def _start_servers(
    model: Model, services: Sequence[tuple[str, Config, Model]], plan: Plan, stack: ExitStack
) -> dict[str, Service]:
    """One ready service per configuration (and twin), alive for all the model's runs so runs
    interleave: a slow minute on a shared machine then hits every configuration alike."""
    servers = {}
    endpoint = plan.otlp.endpoint if plan.otlp else None
    for key, config, bundle in services:
        log = plan.work / "logs" / f"{model.name}-{key}.log"
        try:
            server = start_service(
                bundle.bundle, log, env=service_env(config, endpoint),
                ready_timeout=READY_TIMEOUT_SECONDS, prefix=plan.pinning.server(),
            )  # fmt: skip
        except (RuntimeError, TimeoutError) as exc:
            raise BenchError(f"{model.name} {key}: {exc}") from None
        stack.callback(server.stop)
        servers[key] = server
    return servers


def _floor(model: Model, plan: Plan) -> dict[str, Any]:
    """The model-only floor (bench/floor.py), measured in a fresh process pinned as the
    services are."""
    command = [
        *plan.pinning.server(), sys.executable, "-m", "bench.floor", str(model.bundle),
        "--calls", str(plan.floor_calls),
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=machine.REPO
    )
    if done.returncode != 0:
        raise BenchError(f"the model-only floor failed for {model.bundle}:\n{done.stderr}")
    floor: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return floor


def _prepare_models(datasets: Sequence[str], bundles: Sequence[str], work: Path) -> list[Model]:
    """The datasets' bundles, trained by `lucidserve train` (or built, with their twins), then the
    given bundles."""
    models = []
    for dataset in datasets:
        if dataset == frame_pipeline.NAME:
            print(f"bench: building {dataset} and its array twin in {work / 'models'}", flush=True)
            try:
                frame, array = frame_pipeline.build(work / "models")
            except frame_pipeline.BuildError as exc:
                raise BenchError(str(exc)) from None
            twin = _model(f"{dataset}{report.TWIN_SUFFIX}", array, work)
            models.append(replace(_model(dataset, frame, work), twin=twin))
            continue
        out = work / "models" / dataset
        print(f"bench: training {dataset} into {out}", flush=True)
        done = subprocess.run(
            [str(BIN / "lucidserve"), "train", "--dataset", dataset, "--out", str(out)],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise BenchError(f"training {dataset} failed:\n{done.stderr}")
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
    # The same row as the Open Inference Protocol's users send a table: one tensor per feature.
    tensors = [
        {
            "name": f["name"],
            "shape": [1],
            "datatype": _v2_datatype(f),
            "data": [sample[f["name"]]],
        }
        for f in card["features"]
    ]
    v2_body_file = work / "bodies" / f"{name}-v2.json"
    v2_body_file.write_text(json.dumps({"inputs": tensors}))
    return Model(name, bundle, body_file, v2_body_file, card["name"])


def _v2_datatype(feature: dict[str, Any]) -> str:
    """The tensor datatype the service's V2 metadata gives a feature."""
    if feature["type"] == "boolean":
        return "BOOL"
    if feature["type"] == "number":
        integer = str(feature.get("dtype") or "").lower().startswith(("int", "uint"))
        return "INT64" if integer else "FP64"
    return "BYTES"


def _datasets(options: argparse.Namespace) -> list[str]:
    if options.models is None:
        return [] if options.bundle else list(MODELS)
    names = [n.strip() for n in options.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise BenchError(f"--models takes some of {','.join(MODELS)}; got {', '.join(unknown)}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="wrk benchmark of observability off (A), on (B), on without batching (C).",
    )
    parser.add_argument(
        "--models",
        help=f"models to train or build (default: {','.join(MODELS)}; {','.join(BUILT)}: a "
        "DataFrame pipeline, measured beside its twin fitted on an array)",
    )
    parser.add_argument("--bundle", action="append", default=[], help="a bundle dir (repeatable)")
    parser.add_argument(
        "--configs",
        default="A,B,C",
        help="configurations to run (default A,B,C); also B's variants (bench/configs.py, e.g. "
        "B-traces, B-untraced; `variants` for all), each shown over A and over B",
    )
    parser.add_argument("--concurrency", default="1,8,64", help="wrk connections (default 1,8,64)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--repetitions", type=int, default=3, help="runs per cell (default 3)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="warm-up seconds (default 2; 0: none)"
    )
    parser.add_argument("--floor-calls", type=int, default=200, help="timed model-only calls")
    parser.add_argument("--otlp-sink", action="store_true", help="export traces to a local sink")
    parser.add_argument("--json-out", default="reports/bench.json", help="the JSON results file")
    parser.add_argument("--work-dir", help="keep bundles and service logs here (default: temp)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
