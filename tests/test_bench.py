"""The benchmark (bench/, `make bench`): wrk results, paired ratios, targets, and a short real run.

The real run is a smoke test: one second per configuration against the real service, asserting the
tables and the JSON are well-formed. Timings on a shared machine mean nothing, so none is asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.configs import TARGETS, Target, find_configs, service_env
from bench.cpu import parse_stat, tree_cpu_seconds
from bench.report import (
    RATIO_COLUMNS,
    TWIN_SUFFIX,
    Run,
    check_targets,
    ratios,
    summarize,
    twins,
    variants,
)
from bench.wrk import WrkError, WrkResult, find_wrk, parse_result
from tests.support.processes import BIN, REPO

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8000/v1/predict
  1 threads and 2 connections
  Non-2xx or 3xx responses: 3
BENCH_RESULT {"requests":500,"duration_us":2000000,"bytes":9000,"latency_p50_us":3500,\
"latency_p99_us":12250,"latency_max_us":20000,"errors":{"connect":0,"read":1,"write":0,\
"status":3,"timeout":0}}
"""


def run(
    config: str,
    concurrency: int,
    rps: float,
    p50: float,
    repetition: int = 1,
    cpu_seconds: float | None = None,
) -> Run:
    """A 10 s wrk run at `rps` requests per second, the service using `cpu_seconds` meanwhile."""
    result = WrkResult(int(rps * 10), 10.0, p50, p50 * 3, {"status": 0})
    return Run(config, concurrency, repetition, result, cpu_seconds)


def test_wrk_result_line_gives_throughput_latencies_and_errors() -> None:
    result = parse_result(WRK_OUTPUT)
    assert result.requests_per_second == 250.0
    assert (result.p50_ms, result.p99_ms) == (3.5, 12.25)
    assert result.errors == {"connect": 0, "read": 1, "write": 0, "status": 3, "timeout": 0}
    assert result.error_count == 4


def test_wrk_output_without_a_result_line_is_an_error() -> None:
    with pytest.raises(WrkError, match="BENCH_RESULT"):
        parse_result("Running 1s test\nunable to connect to 127.0.0.1:1\n")


def test_ratios_compare_observed_with_off_and_batched_with_unbatched() -> None:
    runs = [run("A", 64, 1000, 50), run("B", 64, 900, 55), run("C", 64, 150, 400)]
    (ratio,) = ratios(runs)
    assert ratio["conc"] == 64
    assert ratio["B/A req/s"] == pytest.approx(0.9)
    assert ratio["B/C req/s"] == pytest.approx(6.0)
    assert ratio["B/C p50"] == pytest.approx(55 / 400)
    assert ratio["B-A cpu us/req"] is None  # no CPU reading


def test_each_ratio_is_the_median_of_the_repetitions_own_ratios() -> None:
    """In repetition 2 the machine slowed A and B, not C: each repetition's B/C p50 is 1, where
    B's median p50 over C's would be 1.25 / 1.1 = 1.14, a failed target."""
    runs = [
        run("A", 1, 1000, 1.0, 1), run("B", 1, 900, 1.1, 1), run("C", 1, 900, 1.1, 1),
        run("A", 1, 700, 1.4, 2), run("B", 1, 600, 1.6, 2), run("C", 1, 1000, 1.0, 2),
        run("A", 1, 1100, 0.9, 3), run("B", 1, 800, 1.25, 3), run("C", 1, 800, 1.25, 3),
    ]  # fmt: skip
    (ratio,) = ratios(runs)
    assert ratio["B/C p50"] == pytest.approx(1.0)
    assert ratio["B/C req/s"] == pytest.approx(1.0)
    assert ratio["B/A req/s"] == pytest.approx(600 / 700)  # the median of 0.90, 0.86, 0.73


def test_variants_of_b_are_compared_with_a_and_b_at_their_own_concurrency() -> None:
    runs = [
        run("A", 1, 200, 4.0), run("B", 1, 160, 5.0), run("B-traces", 1, 180, 4.5),
        run("A", 64, 1000, 50), run("B", 64, 800, 55), run("B-traces", 64, 900, 52),
        run("C", 64, 150, 400),
    ]  # fmt: skip
    over = {"req/s over A": pytest.approx(0.9), "req/s over B": pytest.approx(1.125)}
    assert variants(runs) == [
        {"config": "B-traces", "conc": 1, **over, "cpu us/req - B": None},
        {"config": "B-traces", "conc": 64, **over, "cpu us/req - B": None},
    ]
    (alone,) = variants([run("B-untraced", 8, 500, 9.0)])
    assert list(alone.values()) == ["B-untraced", 8, None, None, None]


def test_a_frame_pipeline_is_compared_with_its_array_twin_paired_by_repetition() -> None:
    """The frame path runs at 900 and 600 req/s, its array twin at 1000 and 800 (a slow second
    repetition for both): frame/array is the median of 0.9 and 0.75, never 1500 / 1800."""
    t = "B" + TWIN_SUFFIX
    runs = [
        run("A", 64, 1000, 5.0, 1), run("B", 64, 900, 6.0, 1, 9.0), run(t, 64, 1000, 5.0, 1, 9.5),
        run("A", 64, 700, 5.0, 2), run("B", 64, 600, 6.0, 2, 6.0), run(t, 64, 800, 5.0, 2, 7.2),
    ]  # fmt: skip
    (row,) = twins(runs)
    assert row["config"] == "B"
    assert row["conc"] == 64
    assert row["frame req/s"] == pytest.approx(750.0)
    assert row["array req/s"] == pytest.approx(900.0)
    assert row["frame/array req/s"] == pytest.approx((0.9 + 0.75) / 2)
    # 1000 us - 950 us, 1000 us - 900 us
    assert row["frame-array cpu us/req"] == pytest.approx(75.0)
    assert variants(runs) == []  # a twin's cells are not variants of B
    (ratio,) = ratios(runs)
    assert ratio["B/A req/s"] == pytest.approx((0.9 + 600 / 700) / 2)  # the frame's own B/A
    assert twins([r for r in runs if r.config != t]) == []


def test_server_cpu_gives_microseconds_per_request_and_busy_cores() -> None:
    measured = run("B", 64, 4000, 10.0, cpu_seconds=9.6)  # 40,000 requests in 10 s
    assert measured.cpu_us_per_request == pytest.approx(240.0)
    assert measured.cpu_busy == pytest.approx(0.96)
    assert measured.as_dict()["cpu_us_per_request"] == 240.0
    assert measured.as_dict()["requests_per_second"] == 4000.0
    assert run("B", 64, 4000, 10.0).cpu_us_per_request is None
    assert run("B", 64, 0, 10.0, cpu_seconds=1.0).cpu_us_per_request is None


def test_cpu_differences_are_paired_by_repetition_and_skip_unmeasured_runs() -> None:
    """A and B use 200 and 250 µs a request in repetition 1, 300 and 340 in repetition 2 (a slow
    minute for both), 100 and 160 in repetition 3; the median of the differences is 50."""
    runs = [
        run("A", 64, 4000, 10, 1, 8.0), run("B", 64, 3000, 12, 1, 7.5),
        run("A", 64, 3000, 10, 2, 9.0), run("B", 64, 2500, 12, 2, 8.5),
        run("A", 64, 5000, 10, 3, 5.0), run("B", 64, 4000, 12, 3, 6.4),
        run("B-traces", 64, 3500, 11, 1, 7.7), run("B-traces", 64, 3000, 11, 2),
    ]  # fmt: skip
    (ratio,) = ratios(runs)
    assert ratio["B-A cpu us/req"] == pytest.approx(50.0)
    (variant,) = variants(runs)
    # repetition 2 has no CPU reading
    assert variant["cpu us/req - B"] == pytest.approx(7.7e6 / 35000 - 250.0)
    cells = {c["config"]: c for c in summarize(runs)}
    assert cells["B"]["cpu us/req"] == pytest.approx(250.0)
    assert cells["B-traces"]["cpu us/req"] == pytest.approx(7.7e6 / 35000)
    assert cells["B-traces"]["reps"] == 2


def test_proc_stat_fields_are_counted_from_the_last_parenthesis() -> None:
    text = "4242 (gunicorn: (worker) x) S 4200 4242 4200 0 -1 4194560 9 0 0 0 731 122 0 0 20 0 5"
    assert parse_stat(text) == (4200, 731 + 122)


def test_tree_cpu_adds_a_process_and_its_descendants_only(tmp_path: Path) -> None:
    def process(pid: int, parent: int, ticks: int) -> None:
        (tmp_path / str(pid)).mkdir()
        fields = f"S {parent} 1 1 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1"
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (p {pid}) {fields}")

    process(10, 1, 5)
    process(11, 10, 20)  # a worker
    process(12, 11, 30)  # its child
    process(13, 1, 1000)  # not in the tree
    (tmp_path / "self").mkdir()
    ticks = os.sysconf("SC_CLK_TCK")
    assert tree_cpu_seconds(10, tmp_path) == pytest.approx(55 / ticks)
    assert tree_cpu_seconds(11, tmp_path) == pytest.approx(50 / ticks)
    assert tree_cpu_seconds(99, tmp_path) is None
    assert tree_cpu_seconds(10, tmp_path / "missing") is None


def test_tree_cpu_of_this_process_grows_with_the_work_it_does() -> None:
    before = tree_cpu_seconds(os.getpid())
    assert before is not None
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    after = tree_cpu_seconds(os.getpid())
    assert after is not None
    assert after - before >= 0.2


def test_configs_are_named_in_any_case_and_unknown_ones_refused() -> None:
    assert [c.key for c in find_configs("a, b,B-TRACES,b-untraced")] == [
        "A", "B", "B-traces", "B-untraced"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="B-traced"):
        find_configs("A,B-nothing")
    with pytest.raises(ValueError, match="configurations are some of"):
        find_configs(" , ")
    every = find_configs("A,B,variants,B-traces")
    assert [c.key for c in every[:4]] == ["A", "B", "B-traced", "B-untraced"]
    assert len(every) == len({c.key for c in every}) == 11  # each once


def test_configurations_that_trace_export_to_the_sink_and_the_others_do_not() -> None:
    sink = "http://127.0.0.1:4318"
    exported = {
        key: service_env(config, sink).get("OTEL_EXPORTER_OTLP_ENDPOINT")
        for key, config in {c.key: c for c in find_configs("A,B,C,B-traces,B-core")}.items()
    }
    assert exported == {"A": None, "B": sink, "C": sink, "B-traces": None, "B-core": None}
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in service_env(find_configs("B")[0], None)


def test_targets_pass_and_fail_against_their_bounds() -> None:
    runs = [
        run("A", 1, 200, 4.0), run("B", 1, 190, 5.0), run("C", 1, 200, 4.0),
        run("A", 64, 1000, 50), run("B", 64, 950, 55), run("C", 64, 200, 300),
    ]  # fmt: skip
    verdicts = check_targets("iris", ratios(runs), TARGETS)
    assert [v["status"] for v in verdicts] == ["pass", "fail", "fail"]  # 0.95; 4.75; p50 +25 %
    assert verdicts[0] == {"target": "B/A req/s >= 0.9 at c=64", "value": 0.95, "status": "pass"}


def test_a_target_for_named_models_is_left_out_for_the_others() -> None:
    runs = [run(key, 64, 100, 10) for key in "ABC"]
    targets = [
        Target("B/C req/s", 64, ">=", 6.0, models=("iris",)),
        Target("B/A req/s", 64, "<=", 1),
    ]
    assert [v["target"] for v in check_targets("breast_cancer", ratios(runs), targets)] == [
        "B/A req/s <= 1 at c=64"
    ]
    assert all(t.ratio in RATIO_COLUMNS for t in TARGETS)  # each names a column of the ratios


def test_targets_at_concurrencies_not_measured_are_not_applicable() -> None:
    runs = [run(key, 2, 100, 10) for key in "ABC"]
    assert {v["status"] for v in check_targets("iris", ratios(runs), TARGETS)} == {"n/a"}


@dataclass(frozen=True)
class Smoke:
    """What a short real `python -m bench.run` left: its stdout, its JSON, its services' logs."""

    stdout: str
    document: dict[str, Any]
    logs: Path


@pytest.fixture(scope="module")
def smoke(iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Smoke:
    """One second per configuration at concurrency 2, spans exported to the OTLP sink, with a
    service setting in the caller's environment that the bench must not pass on."""
    try:
        find_wrk()
    except WrkError as exc:
        pytest.skip(f"the benchmark needs wrk: {exc}")
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench.json"
    command = [
        str(BIN / "python"), "-m", "bench.run", "--bundle", str(iris_bundle), "--duration", "1",
        "--repetitions", "1", "--concurrency", "2", "--warmup", "0", "--floor-calls", "5",
        "--configs", "A,B,C,B-traces,B-v2", "--otlp-sink", "--json-out", str(out),
        "--work-dir", str(tmp / "work"),
    ]  # fmt: skip
    env = {**os.environ, "LUCIDSERVE_PREDICTION_LOG": "false"}
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return Smoke(done.stdout, json.loads(out.read_text()), tmp / "work" / "logs")


def table_rows(stdout: str, columns: list[str]) -> list[list[str]]:
    """The rows under the header made of `columns` (up to the first blank line)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == columns)
    assert set(lines[start + 1]) == {"-"}
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


@pytest.mark.slow
def test_smoke_prints_a_row_per_configuration_with_numbers(smoke: Smoke) -> None:
    header = ["config", "conc", "req/s", "p50", "ms", "p99", "ms", "cpu", "us/req", "cpu", "busy"]
    rows = table_rows(smoke.stdout, [*header, "reps", "errors"])
    assert [row[0] for row in rows] == ["A", "B", "B-traces", "B-v2", "C"]
    for row in rows:
        assert len(row) == 9
        assert int(row[1]) == 2
        assert all(float(value) >= 0 for value in row[2:5])
        assert float(row[5]) > 0  # the service's CPU per request
        assert 0 < float(row[6]) <= 2.5  # cores kept busy: one worker, and the arbiter
        assert (int(row[7]), int(row[8])) == (1, 0)  # one repetition, no wrk errors


@pytest.mark.slow
def test_smoke_prints_the_ratios_the_variants_the_floor_and_the_targets(smoke: Smoke) -> None:
    (row,) = table_rows(
        smoke.stdout, ["conc", "B/A", "req/s", "B/C", "req/s", "B/C", "p50", "B-A", "cpu", "us/req"]
    )
    assert row[0] == "2"
    assert all(float(value) > 0 for value in row[1:4])
    float(row[4])  # B's extra CPU per request: a number, of either sign in a one-second run
    variants = table_rows(
        smoke.stdout,
        ["config", "conc", "req/s", "over", "A", "req/s", "over", "B", "cpu", "us/req", "-", "B"],
    )
    # B-v2 sends the same row through the Open Inference Protocol: a variant like the others.
    assert [v[:2] for v in variants] == [["B-traces", "2"], ["B-v2", "2"]]
    for variant in variants:
        assert all(float(value) > 0 for value in variant[2:4])
        float(variant[4])
    assert re.search(
        r"model-only floor \(RandomForestClassifier\.predict_proba\), 64 row", smoke.stdout
    )
    # Every target applies to a model named iris; none was measured at concurrency 2.
    assert re.findall(r"^\[ n/a\] (.+):", smoke.stdout, flags=re.MULTILINE) == [
        f"{t.ratio} {t.op} {t.bound:g} at c={t.concurrency}" for t in TARGETS
    ]


@pytest.mark.slow
def test_smoke_json_holds_the_printed_tables_runs_commit_and_machine(smoke: Smoke) -> None:
    document = smoke.document
    assert re.fullmatch(r"[0-9a-f]{40}", document["git"]["commit"])
    assert document["machine"]["nproc"] >= 1
    assert document["machine"]["cpu_model"]
    assert set(document["configs"]) == {"A", "B", "C", "B-traces", "B-v2"}
    assert len(document["targets"]) == len(TARGETS)
    (model,) = document["models"]
    assert model["floor"]["estimator"] == "RandomForestClassifier"
    assert [r["config"] for r in model["runs"]] == ["A", "B", "C", "B-traces", "B-v2"]
    assert all(r["errors"]["status"] == 0 for r in model["runs"])  # the V2 requests were 200s
    assert all(r["cpu_us_per_request"] > 0 for r in model["runs"])
    assert [c["config"] for c in model["summary"]] == ["A", "B", "B-traces", "B-v2", "C"]
    assert all(c["cpu busy"] > 0 for c in model["summary"])
    (ratio,) = model["ratios"]
    assert list(ratio) == ["conc", *RATIO_COLUMNS]
    assert ratio["B/A req/s"] > 0
    assert ratio["B/C req/s"] > 0
    assert [v["config"] for v in model["variants"]] == ["B-traces", "B-v2"]
    for variant in model["variants"]:
        assert variant["req/s over A"] > 0
        assert isinstance(variant["cpu us/req - B"], float)
    assert [b["rows"] for b in model["floor"]["batches"]] == [1, 64]
    assert all(b["us_per_row"] > 0 for b in model["floor"]["batches"])
    assert [t["status"] for t in model["targets"]] == ["n/a"] * len(TARGETS)


@pytest.mark.slow
def test_smoke_traced_configurations_exported_to_the_sink(smoke: Smoke) -> None:
    traces = smoke.document["traces"]
    assert traces["mode"].startswith("exported to a local OTLP/HTTP sink")
    assert traces["received"]["requests"] >= 1  # B and C flushed their spans when stopped
    assert traces["received"]["bytes"] > 0


@pytest.mark.slow
def test_smoke_services_ran_their_configuration_not_the_callers_settings(smoke: Smoke) -> None:
    """The caller set LUCIDSERVE_PREDICTION_LOG=false: B still logs its predictions, A does not."""
    assert '"event":"prediction"' in (smoke.logs / "iris-B.log").read_text()
    assert '"event":"prediction"' not in (smoke.logs / "iris-A.log").read_text()
