"""From wrk runs to the tables: medians per cell, the ratios and B's variants (each paired by
repetition), and the targets (bench/configs.py). A table is a list of rows, a row a dict from
column header to value: the same rows are printed and written to the JSON file."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.configs import Target
from bench.wrk import WrkResult

Row = dict[str, Any]
MAIN_CONFIGS = ("A", "B", "C")
# A model's array twin (bench/frame_pipeline.py) runs every configuration under its key with this
# suffix: "A@array" is A on the same pipeline fitted on an array.
TWIN_SUFFIX = "@array"
# The ratios table's columns: (top configuration, bottom configuration, measure).
RATIO_COLUMNS = {
    "B/A req/s": ("B", "A", "req/s"),
    "B/C req/s": ("B", "C", "req/s"),
    "B/C p50": ("B", "C", "p50"),
    "B-A cpu us/req": ("B", "A", "cpu"),
}
# The variants table's columns, for each variant of B: (bottom configuration, measure).
VARIANT_COLUMNS = {
    "req/s over A": ("A", "req/s"),
    "req/s over B": ("B", "req/s"),
    "cpu us/req - B": ("B", "cpu"),  # what the part a variant leaves out costs, negated
}
# The twins table's columns besides the two medians of req/s: (measure) compared frame over array.
TWIN_COLUMNS = {"frame/array req/s": "req/s", "frame-array cpu us/req": "cpu"}
# Shown with one decimal; the rest with two.
ONE_DECIMAL = (
    "req/s", "cpu us/req", "B-A cpu us/req", "cpu us/req - B", "frame req/s", "array req/s",
    "frame-array cpu us/req",
)  # fmt: skip


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

    def as_dict(self) -> Row:
        return _rounded(
            {
                **{k: v for k, v in asdict(self).items() if k != "result"},
                **asdict(self.result),
                "requests_per_second": self.result.requests_per_second,
                "cpu_us_per_request": self.cpu_us_per_request,
            }
        )


Reading = Callable[[Run], float | None]
Comparison = Callable[[float, float], float | None]
# What a paired comparison reads from each run and how it compares the two readings: throughputs
# and latencies by their ratio, CPU time per request by its difference (in microseconds).
MEASURES: dict[str, tuple[Reading, Comparison]] = {
    "req/s": (lambda r: r.result.requests_per_second, lambda a, b: a / b if b else None),
    "p50": (lambda r: r.result.p50_ms, lambda a, b: a / b if b else None),
    "cpu": (lambda r: r.cpu_us_per_request, lambda a, b: a - b),
}


def tables(runs: Sequence[Run], model: str, targets: Sequence[Target]) -> Row:
    """Every table of one model, and its runs: what the JSON file holds and `render_model`
    prints."""
    ratio_rows = ratios(runs)
    found = {
        "summary": summarize(runs),
        "ratios": ratio_rows,
        "variants": variants(runs),
        "twins": twins(runs),
        "targets": check_targets(model, ratio_rows, targets),
    }
    return {
        "runs": [r.as_dict() for r in runs],
        **{k: list(map(_rounded, v)) for k, v in found.items()},
    }


def summarize(runs: Sequence[Run]) -> list[Row]:
    """One row per (configuration, concurrency), by concurrency then configuration: medians
    over the repetitions, and every wrk error."""
    rows = []
    for concurrency, config in sorted({(r.concurrency, r.config) for r in runs}):
        group = [r for r in runs if (r.concurrency, r.config) == (concurrency, config)]
        rows.append(
            {
                "config": config,
                "conc": concurrency,
                "req/s": _median([r.result.requests_per_second for r in group]),
                "p50 ms": _median([r.result.p50_ms for r in group]),
                "p99 ms": _median([r.result.p99_ms for r in group]),
                "cpu us/req": _median([r.cpu_us_per_request for r in group]),
                "cpu busy": _median([r.cpu_busy for r in group]),
                "reps": len(group),
                "errors": sum(r.result.error_count for r in group),
            }
        )
    return rows


def ratios(runs: Sequence[Run]) -> list[Row]:
    """B/A and B/C per concurrency, each the median over the repetitions of that repetition's
    ratio. A repetition's runs follow one another, so a slow minute of a shared machine weighs on
    both sides of its ratio; a ratio of medians can pair one side's slow run with the other's
    fast one. The same for B's CPU per request minus A's."""
    return [
        {"conc": n, **{c: _paired(runs, t, b, n, m) for c, (t, b, m) in RATIO_COLUMNS.items()}}
        for n in sorted({r.concurrency for r in runs})
    ]


def variants(runs: Sequence[Run]) -> list[Row]:
    """Each configuration beyond A, B and C (B's variants) over A and over B, per concurrency,
    paired by repetition as `ratios` is."""
    keys = sorted(
        (r.concurrency, r.config)
        for r in runs
        if r.config not in MAIN_CONFIGS and not r.config.endswith(TWIN_SUFFIX)
    )
    keys = list(dict.fromkeys(keys))
    return [
        {
            "config": config,
            "conc": n,
            **{c: _paired(runs, config, b, n, m) for c, (b, m) in VARIANT_COLUMNS.items()},
        }
        for n, config in keys
    ]


def twins(runs: Sequence[Run]) -> list[Row]:
    """Each configuration run on a model and on its array twin, per concurrency: both medians of
    req/s, the frame's over the array's req/s and the frame's CPU per request minus the array's,
    paired by repetition as `ratios` is: the DataFrame's cost, with the service around it."""
    present = {(r.concurrency, r.config) for r in runs}
    keys = sorted(
        (n, config)
        for n, config in present
        if not config.endswith(TWIN_SUFFIX) and (n, config + TWIN_SUFFIX) in present
    )
    rows = []
    for n, config in keys:
        twin = config + TWIN_SUFFIX

        def throughput(key: str, n: int = n) -> float | None:
            return _median([r.result.requests_per_second for r in runs
                            if (r.concurrency, r.config) == (n, key)])  # fmt: skip

        row: Row = {"config": config, "conc": n, "frame req/s": throughput(config)}
        row["array req/s"] = throughput(twin)
        for column, measure in TWIN_COLUMNS.items():
            row[column] = _paired(runs, config, twin, n, measure)
        rows.append(row)
    return rows


def check_targets(model: str, ratio_rows: Sequence[Row], targets: Sequence[Target]) -> list[Row]:
    """The targets that apply to `model`, each with its ratio's value and whether it holds
    ("n/a" when the ratio was not measured)."""
    at = {row["conc"]: row for row in ratio_rows}
    verdicts = []
    for target in targets:
        if target.models and model not in target.models:
            continue
        value = at.get(target.concurrency, {}).get(target.ratio)
        status = "n/a" if value is None else "pass" if target.holds(value) else "fail"
        name = f"{target.ratio} {target.op} {target.bound:g} at c={target.concurrency}"
        verdicts.append({"target": name, "value": value, "status": status})
    return verdicts


def render_model(title: str, tables: Row, floor: Row, twin_floor: Row | None = None) -> str:
    """The printed block for one model: its tables (an empty one left out), floor (and its array
    twin's) and targets."""
    lines = [title, ""]
    for key in ("summary", "ratios", "variants", "twins"):
        if tables[key]:
            lines += [*_aligned(tables[key]), ""]
    floors = [("model-only floor", floor)]
    if twin_floor is not None:
        floors.append(("array twin's floor", twin_floor))
    for name, measured in floors:
        for batch in measured["batches"]:
            lines.append(
                f"{name} ({measured['estimator']}.{measured['method']}), {batch['rows']} row(s): "
                f"{batch['us_per_row']:.1f} us/row ({batch['ms_per_call']:.3f} ms/call; its input "
                f"built in {batch['input_ms_per_call']:.3f} ms)"
            )
    lines.append("")
    lines += [f"[{v['status']:>4}] {v['target']}: {_fmt(v['value'])}" for v in tables["targets"]]
    return "\n".join(lines)


def _aligned(rows: Sequence[Row]) -> list[str]:
    """The rows under their headers: the first column left-aligned, the numbers right-aligned."""
    header = list(rows[0])
    cells = [
        [_fmt(value, 1 if key in ONE_DECIMAL else 2) for key, value in r.items()] for r in rows
    ]
    widths = [max(len(v) for v in column) for column in zip(header, *cells, strict=True)]

    def line(values: list[str]) -> str:
        rest = (v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True))
        return "  ".join([values[0].ljust(widths[0]), *rest])

    top = line(header)
    return [top, "-" * len(top), *(line(row) for row in cells)]


def _paired(
    runs: Sequence[Run], top: str, bottom: str, concurrency: int, measure: str
) -> float | None:
    """The median, over the repetitions that ran both `top` and `bottom`, of their MEASURES'
    comparison; a repetition where a value is missing or the comparison is None is left out."""
    value, compare = MEASURES[measure]
    at = {(r.config, r.repetition): r for r in runs if r.concurrency == concurrency}
    compared = []
    for (config, repetition), run in at.items():
        other = at.get((bottom, repetition))
        if config != top or other is None:
            continue
        mine, theirs = value(run), value(other)
        if mine is not None and theirs is not None:
            compared.append(compare(mine, theirs))
    return _median(compared)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _rounded(record: Row) -> Row:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}
