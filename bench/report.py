"""From wrk runs to the printed table: medians per cell, the ratios, and the target checks."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.wrk import WrkResult

TARGET_CONCURRENCY = 64
LATENCY_CONCURRENCY = 1
MIN_OBSERVED_OVER_OFF = 0.90
MIN_BATCHED_OVER_UNBATCHED_FOREST = 6.0
MAX_BATCHED_P50_OVER_UNBATCHED = 1.10
TABLE_COLUMNS = ["config", "conc", "req/s", "p50 ms", "p99 ms", "cpu us/req", "cpu busy", "reps",
                 "errors"]  # fmt: skip
RATIO_COLUMNS = ["conc", "B/A req/s", "B/C req/s", "B/C p50", "B-A cpu us/req"]
VERSUS_OFF_COLUMNS = ["config", "conc", "req/s over A", "req/s over B", "cpu us/req - B"]
MAIN_CONFIGS = ("A", "B", "C")
Variant = tuple[str, int, float | None, float | None, float | None]
"""A variant of B at one concurrency: (config, concurrency, req/s over A, req/s over B, server
CPU microseconds per request minus B's)."""


@dataclass(frozen=True)
class Run:
    """One measured (not warm-up) wrk run of one configuration at one concurrency."""

    config: str
    concurrency: int
    repetition: int
    result: WrkResult
    server_cpu_seconds: float | None = None  # the service's processes during the run

    @property
    def cpu_us_per_request(self) -> float | None:
        """The service's CPU time per answered request, in microseconds."""
        if self.server_cpu_seconds is None or not self.result.requests:
            return None
        return 1e6 * self.server_cpu_seconds / self.result.requests

    @property
    def cpu_busy(self) -> float | None:
        """The service's CPU time over the run's duration: 1.0 is one core kept busy."""
        if self.server_cpu_seconds is None or self.result.seconds <= 0:
            return None
        return self.server_cpu_seconds / self.result.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "concurrency": self.concurrency,
            "repetition": self.repetition,
            "requests": self.result.requests,
            "seconds": round(self.result.seconds, 3),
            "requests_per_second": round(self.result.requests_per_second, 1),
            "p50_ms": round(self.result.p50_ms, 3),
            "p99_ms": round(self.result.p99_ms, 3),
            "errors": self.result.errors,
            "server_cpu_seconds": _round(self.server_cpu_seconds, 3),
            "cpu_us_per_request": _round(self.cpu_us_per_request, 1),
        }


@dataclass(frozen=True)
class Cell:
    """Medians over the repetitions of one configuration at one concurrency."""

    config: str
    concurrency: int
    repetitions: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float | None
    cpu_busy: float | None


@dataclass(frozen=True)
class Ratio:
    """Configurations compared at one concurrency (None when a side was not measured)."""

    concurrency: int
    observed_over_off: float | None  # B/A, requests per second
    batched_over_unbatched: float | None  # B/C, requests per second
    batched_p50_over_unbatched: float | None  # B/C, median latency
    observed_cpu_us_over_off: float | None  # B-A, server CPU microseconds per request


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, checked against this run (informational, never an exit code)."""

    name: str
    value: float | None
    threshold: float
    status: str  # "pass", "fail" or "n/a"
    note: str = ""


def summarize(runs: Sequence[Run]) -> list[Cell]:
    """One cell per (configuration, concurrency), ordered by concurrency then configuration."""
    keys = sorted({(r.concurrency, r.config) for r in runs})
    cells = []
    for concurrency, config in keys:
        measured = [r for r in runs if (r.concurrency, r.config) == (concurrency, config)]
        group = [r.result for r in measured]
        cells.append(
            Cell(
                config=config,
                concurrency=concurrency,
                repetitions=len(group),
                requests_per_second=statistics.median(g.requests_per_second for g in group),
                p50_ms=statistics.median(g.p50_ms for g in group),
                p99_ms=statistics.median(g.p99_ms for g in group),
                errors=sum(g.error_count for g in group),
                cpu_us_per_request=_median([r.cpu_us_per_request for r in measured]),
                cpu_busy=_median([r.cpu_busy for r in measured]),
            )
        )
    return cells


def ratios(runs: Sequence[Run]) -> list[Ratio]:
    """B/A and B/C per concurrency, each the median over the repetitions of that repetition's
    ratio. A repetition's runs follow one another, so a slow minute of a shared machine weighs on
    both sides of its ratio; a ratio of medians can pair one side's slow run with the other's
    fast one."""
    out = []
    for concurrency in sorted({r.concurrency for r in runs}):
        out.append(
            Ratio(
                concurrency=concurrency,
                observed_over_off=_paired(runs, "B", "A", concurrency, _throughput, _ratio),
                batched_over_unbatched=_paired(runs, "B", "C", concurrency, _throughput, _ratio),
                batched_p50_over_unbatched=_paired(runs, "B", "C", concurrency, _p50, _ratio),
                observed_cpu_us_over_off=_paired(runs, "B", "A", concurrency, _cpu, _difference),
            )
        )
    return out


def versus_off(runs: Sequence[Run]) -> list[Variant]:
    """Each configuration beyond A, B and C (the variants of B) over A and over B, per
    concurrency, requests per second, and its server CPU per request minus B's, paired by
    repetition as `ratios` does."""
    keys = sorted({(r.concurrency, r.config) for r in runs if r.config not in MAIN_CONFIGS})
    return [
        (
            config,
            concurrency,
            _paired(runs, config, "A", concurrency, _throughput, _ratio),
            _paired(runs, config, "B", concurrency, _throughput, _ratio),
            _paired(runs, config, "B", concurrency, _cpu, _difference),
        )
        for concurrency, config in keys
    ]


def check_targets(model_ratios: Sequence[Ratio], estimator: str) -> list[Target]:
    """The issue's three targets for one model."""
    at = {r.concurrency: r for r in model_ratios}
    high, low = at.get(TARGET_CONCURRENCY), at.get(LATENCY_CONCURRENCY)
    targets = [
        _at_least(
            f"B/A req/s >= {MIN_OBSERVED_OVER_OFF:.2f} at c={TARGET_CONCURRENCY}",
            None if high is None else high.observed_over_off,
            MIN_OBSERVED_OVER_OFF,
            missing=f"c={TARGET_CONCURRENCY} with A and B not measured",
        )
    ]
    forest_name = f"B/C req/s >= {MIN_BATCHED_OVER_UNBATCHED_FOREST:g} at c={TARGET_CONCURRENCY}"
    if "Forest" in estimator:
        targets.append(
            _at_least(
                forest_name + " (forest)",
                None if high is None else high.batched_over_unbatched,
                MIN_BATCHED_OVER_UNBATCHED_FOREST,
                missing=f"c={TARGET_CONCURRENCY} with B and C not measured",
            )
        )
    else:
        targets.append(
            Target(forest_name, None, MIN_BATCHED_OVER_UNBATCHED_FOREST, "n/a", "forests only")
        )
    p50 = None if low is None else low.batched_p50_over_unbatched
    name = f"c={LATENCY_CONCURRENCY}: batched p50 within 10 % of unbatched (B/C p50 <= 1.10)"
    if p50 is None:
        targets.append(Target(name, None, MAX_BATCHED_P50_OVER_UNBATCHED, "n/a", "not measured"))
    else:
        passed = p50 <= MAX_BATCHED_P50_OVER_UNBATCHED
        targets.append(Target(name, p50, MAX_BATCHED_P50_OVER_UNBATCHED, _status(passed)))
    return targets


def render_model(
    title: str,
    cells: Sequence[Cell],
    model_ratios: Sequence[Ratio],
    variants: Sequence[Variant],
    targets: Sequence[Target],
    floor: dict[str, Any],
) -> str:
    """The printed block for one model: the aligned table, the ratios, the floor, the targets."""
    lines = [title, ""]
    cell_rows = [
        [c.config, str(c.concurrency), f"{c.requests_per_second:.1f}", f"{c.p50_ms:.2f}",
         f"{c.p99_ms:.2f}", _fmt(c.cpu_us_per_request, 1), _fmt(c.cpu_busy), str(c.repetitions),
         str(c.errors)]
        for c in cells
    ]  # fmt: skip
    lines += _aligned(TABLE_COLUMNS, cell_rows)
    lines.append("")
    ratio_rows = [
        [str(r.concurrency), _fmt(r.observed_over_off), _fmt(r.batched_over_unbatched),
         _fmt(r.batched_p50_over_unbatched), _fmt(r.observed_cpu_us_over_off, 1)]
        for r in model_ratios
    ]  # fmt: skip
    lines += _aligned(RATIO_COLUMNS, ratio_rows)
    lines.append("")
    variant_rows = [[k, str(n), _fmt(a), _fmt(b), _fmt(c, 1)] for k, n, a, b, c in variants]
    if variant_rows:
        lines += [*_aligned(VERSUS_OFF_COLUMNS, variant_rows), ""]
    method = floor.get("method", "predict_proba")
    for batch in floor.get("batches", []):
        lines.append(
            f"model-only floor ({floor.get('estimator', '?')}.{method}), {batch['rows']} row(s): "
            f"{batch['us_per_row']:.1f} us/row ({batch['ms_per_call']:.3f} ms/call)"
        )
    lines.append("")
    for t in targets:
        value = "-" if t.value is None else f"{t.value:.2f}"
        note = f" ({t.note})" if t.note else ""
        lines.append(f"[{t.status:>4}] {t.name}: {value}{note}")
    return "\n".join(lines)


def model_json(
    runs: Sequence[Run],
    cells: Sequence[Cell],
    model_ratios: Sequence[Ratio],
    variants: Sequence[Variant],
    targets: Sequence[Target],
) -> dict[str, Any]:
    """Everything measured for one model, for the JSON file."""
    return {
        "runs": [r.as_dict() for r in runs],
        "summary": [_rounded(asdict(c)) for c in cells],
        "ratios": [_rounded(asdict(r)) for r in model_ratios],
        "versus_off": [
            _rounded({"config": k, "concurrency": n, "over_a": a, "over_b": b, "cpu_us_minus_b": c})
            for k, n, a, b, c in variants
        ],
        "targets": [_rounded(asdict(t)) for t in targets],
    }


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    """The first column left-aligned, the numbers right-aligned, a rule under the header."""
    widths = [max(len(v) for v in column) for column in zip(header, *rows, strict=True)]

    def line(values: list[str]) -> str:
        first = values[0].ljust(widths[0])
        rest = (v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    top = line(header)
    return [top, "-" * len(top), *(line(row) for row in rows)]


def _paired(
    runs: Sequence[Run],
    top: str,
    bottom: str,
    concurrency: int,
    value: Callable[[Run], float | None],
    compare: Callable[[float, float], float | None],
) -> float | None:
    """The median over the repetitions that ran both `top` and `bottom` of `compare` applied to
    their values; a repetition where either value is missing, or `compare` gives None, is left
    out."""
    at = {(r.config, r.repetition): r for r in runs if r.concurrency == concurrency}
    values = []
    for (config, repetition), run in at.items():
        other = at.get((bottom, repetition))
        if config != top or other is None:
            continue
        mine, theirs = value(run), value(other)
        if mine is None or theirs is None:
            continue
        compared = compare(mine, theirs)
        if compared is not None:
            values.append(compared)
    return float(statistics.median(values)) if values else None


def _throughput(run: Run) -> float:
    return run.result.requests_per_second


def _p50(run: Run) -> float:
    return run.result.p50_ms


def _cpu(run: Run) -> float | None:
    return run.cpu_us_per_request


def _ratio(top: float, bottom: float) -> float | None:
    return top / bottom if bottom else None


def _difference(top: float, bottom: float) -> float:
    return top - bottom


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def _at_least(name: str, value: float | None, threshold: float, *, missing: str) -> Target:
    if value is None:
        return Target(name, None, threshold, "n/a", missing)
    return Target(name, value, threshold, _status(value >= threshold))


def _status(passed: bool) -> str:
    return "pass" if passed else "fail"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _rounded(record: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}
