"""`make bench-memory`: what a big model costs by worker count, and what scrapes cost the workers.

For 1, 2 and 4 workers on a generated forest: the time from `lucidserve serve` to every worker
ready, and the PSS (proportional set size: a page shared by n processes counts 1/n in each) summed
over the master and all its children from /proc/<pid>/smaps_rollup, once ready. Then, for each
worker count, the request throughput of a short wrk run without scrapes and with /metrics scraped
every second, as Prometheus would. Linux only (/proc).

    python -m bench.memory [--trees 10] [--big] [--workers 1,2,4] [--duration 10]
        [--metrics-on-app-port] [--json-out reports/memory.json]

The default forest is 10 extremely randomized trees grown on noise, 60,000 rows x 20 features
(about 75 MB of estimator); `--big` grows 32 (about 240 MB, the size the issue measured).
`--metrics-on-app-port` scrapes the API port instead (the layout before the metrics port).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.wrk import WrkError, WrkResult, find_wrk, run_wrk
from tests.support.models import package_large_forest
from tests.support.proc import descendants, pss_available, tree_pss_bytes
from tests.support.processes import Service, start_service

BIG_TREES = 32
READY_TIMEOUT_SECONDS = 300.0
CONNECTIONS = 16
MIB = 1024 * 1024


@dataclass(frozen=True)
class Row:
    """One worker count: start-up, memory, and throughput without and with scrapes."""

    workers: int
    ready_seconds: float
    pss_mib: float
    processes: int
    rps: float
    rps_scraped: float
    scrapes: int
    scrape_failures: int


def main(argv: Sequence[str] | None = None) -> int:
    """Run the memory benchmark and print its table."""
    options = _parser().parse_args(argv)
    if not pss_available():
        print("bench-memory needs Linux /proc (smaps_rollup)", file=sys.stderr)
        return 2
    try:
        wrk = find_wrk()
    except WrkError as exc:
        print(exc, file=sys.stderr)
        return 2
    trees = BIG_TREES if options.big else options.trees
    counts = [int(n) for n in options.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="lucidserve-bench-memory-") as tmp:
        work = Path(tmp)
        print(f"growing a forest of {trees} trees ...", flush=True)
        bundle = package_large_forest(work, trees=trees)
        model_mib = (bundle / "model.skops").stat().st_size / MIB
        body = work / "body.json"
        features = json.loads((bundle / "card.json").read_text())["features"]
        body.write_text(json.dumps({"samples": [{f["name"]: f["example"] for f in features}]}))
        on_app_port = options.metrics_on_app_port
        rows = [
            _measure(bundle, body, workers, work, wrk, options.duration, on_app_port)
            for workers in counts
        ]
    print(_table(rows, trees, model_mib, options))
    if options.json_out:
        options.json_out.parent.mkdir(parents=True, exist_ok=True)
        record = {"trees": trees, "model_mib": model_mib, "rows": [asdict(r) for r in rows]}
        options.json_out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


def _measure(
    bundle: Path, body: Path, workers: int, work: Path, wrk: str, seconds: int, on_app_port: bool
) -> Row:
    started = time.monotonic()
    service = start_service(
        bundle, work / f"serve-{workers}.log", workers=workers, ready_timeout=READY_TIMEOUT_SECONDS
    )
    try:
        ready = time.monotonic() - started
        scrape = _scraper(service, on_app_port)
        scrape()  # the metrics side is up before memory is read
        pss = tree_pss_bytes(service.pid) / MIB
        processes = 1 + len(descendants(service.pid))
        url = f"{service.url}/v1/predict"
        plain = run_wrk(wrk, url, body, connections=CONNECTIONS, seconds=seconds)
        scraped, scrapes, failures = _while_scraping(
            scrape, lambda: run_wrk(wrk, url, body, connections=CONNECTIONS, seconds=seconds)
        )
    finally:
        service.stop()
    row = Row(
        workers, round(ready, 2), round(pss, 1), processes,
        round(plain.requests_per_second, 1), round(scraped.requests_per_second, 1),
        scrapes, failures,
    )  # fmt: skip
    print(f"  {row}", flush=True)
    return row


def _scraper(service: Service, on_app_port: bool) -> Callable[[], bool]:
    url = f"{service.url}/metrics" if on_app_port else service.metrics_url

    def scrape() -> bool:
        try:
            return httpx.get(url, timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    return scrape


def _while_scraping(
    scrape: Callable[[], bool], run: Callable[[], WrkResult]
) -> tuple[WrkResult, int, int]:
    """`run()` while another thread scrapes once a second; the result, scrapes and failures."""
    stop = threading.Event()
    outcomes: list[bool] = []

    def loop() -> None:
        while not stop.wait(1.0):
            outcomes.append(scrape())

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        result = run()
    finally:
        stop.set()
        thread.join()
    return result, len(outcomes), outcomes.count(False)


def _table(rows: list[Row], trees: int, model_mib: float, options: argparse.Namespace) -> str:
    where = "the API port" if options.metrics_on_app_port else "the metrics port"
    lines = [
        f"== forest of {trees} trees, estimator file {model_mib:.0f} MiB; PSS summed over the "
        f"master and its children; wrk {CONNECTIONS} connections x {options.duration} s, "
        f"scrapes of {where} every second",
        "| workers | ready after | PSS total | processes | req/s | req/s, scraped "
        "| scrapes (failed) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.workers} | {r.ready_seconds:.1f} s | {r.pss_mib:,.0f} MiB | {r.processes} "
            f"| {r.rps:,.0f} | {r.rps_scraped:,.0f} | {r.scrapes} ({r.scrape_failures}) |"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.memory", description=__doc__)
    parser.add_argument("--trees", type=int, default=10, help="trees in the forest (default 10)")
    parser.add_argument("--big", action="store_true", help=f"{BIG_TREES} trees, about 240 MB")
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    parser.add_argument("--metrics-on-app-port", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", type=Path)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
