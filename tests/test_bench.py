"""The benchmark (bench/, `make bench`): result parsing, ratios and targets, and a short real run.

The real run is a smoke test: one second per configuration against the real service, asserting the
table and the JSON are well-formed. Timings on a shared machine mean nothing, so none is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.configs import find_configs
from bench.costs import CONFIGS as COST_CONFIGS
from bench.costs import Row, _count, part_costs, traced_request_cost, tracing_split
from bench.cpu import parse_stat, tree_cpu_seconds
from bench.debian import MissingCommandError, ensure_command
from bench.instructions import CountError, count_instructions, parse_total, per_unit
from bench.report import (
    RATIO_COLUMNS,
    TABLE_COLUMNS,
    Run,
    check_targets,
    ratios,
    summarize,
    versus_off,
)
from bench.wrk import WrkError, WrkResult, ensure_wrk, parse_result
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
    assert ratio.concurrency == 64
    assert ratio.observed_over_off == pytest.approx(0.9)
    assert ratio.batched_over_unbatched == pytest.approx(6.0)
    assert ratio.batched_p50_over_unbatched == pytest.approx(55 / 400)


def test_each_ratio_is_the_median_of_the_repetitions_own_ratios() -> None:
    """In repetition 2 the machine slowed A and B, not C: each repetition's B/C p50 is 1, where
    B's median p50 over C's would be 1.25 / 1.1 = 1.14, a failed target."""
    runs = [
        run("A", 1, 1000, 1.0, 1), run("B", 1, 900, 1.1, 1), run("C", 1, 900, 1.1, 1),
        run("A", 1, 700, 1.4, 2), run("B", 1, 600, 1.6, 2), run("C", 1, 1000, 1.0, 2),
        run("A", 1, 1100, 0.9, 3), run("B", 1, 800, 1.25, 3), run("C", 1, 800, 1.25, 3),
    ]  # fmt: skip
    (ratio,) = ratios(runs)
    assert ratio.batched_p50_over_unbatched == pytest.approx(1.0)
    assert ratio.batched_over_unbatched == pytest.approx(1.0)
    assert ratio.observed_over_off == pytest.approx(600 / 700)  # the median of 0.90, 0.86, 0.73


def test_variants_of_b_are_compared_with_a_and_b_at_their_own_concurrency() -> None:
    runs = [
        run("A", 1, 200, 4.0), run("B", 1, 160, 5.0), run("B-traces", 1, 180, 4.5),
        run("A", 64, 1000, 50), run("B", 64, 800, 55), run("B-traces", 64, 900, 52),
        run("C", 64, 150, 400),
    ]  # fmt: skip
    assert versus_off(runs) == [
        ("B-traces", 1, pytest.approx(0.9), pytest.approx(1.125), None),
        ("B-traces", 64, pytest.approx(0.9), pytest.approx(1.125), None),
    ]
    assert versus_off([run("B-untraced", 8, 500, 9.0)]) == [("B-untraced", 8, None, None, None)]


def test_server_cpu_gives_microseconds_per_request_and_busy_cores() -> None:
    measured = run("B", 64, 4000, 10.0, cpu_seconds=9.6)  # 40,000 requests in 10 s
    assert measured.cpu_us_per_request == pytest.approx(240.0)
    assert measured.cpu_busy == pytest.approx(0.96)
    assert measured.as_dict()["cpu_us_per_request"] == 240.0
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
    assert ratio.observed_cpu_us_over_off == pytest.approx(50.0)
    (variant,) = versus_off(runs)
    assert variant[4] == pytest.approx(7.7e6 / 35000 - 250.0)  # repetition 2 has no CPU reading
    cells = {c.config: c for c in summarize(runs)}
    assert cells["B"].cpu_us_per_request == pytest.approx(250.0)
    assert cells["B-traces"].cpu_us_per_request == pytest.approx(7.7e6 / 35000)


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


def test_targets_pass_and_fail_against_the_issue_thresholds() -> None:
    runs = [
        run("A", 1, 200, 4.0), run("B", 1, 190, 5.0), run("C", 1, 200, 4.0),
        run("A", 64, 1000, 50), run("B", 64, 950, 55), run("C", 64, 200, 300),
    ]  # fmt: skip
    forest = {t.name: t.status for t in check_targets(ratios(runs), "RandomForestClassifier")}
    assert list(forest.values()) == ["pass", "fail", "fail"]  # B/A 0.95; B/C 4.75; p50 +25 %
    pipeline = check_targets(ratios(runs), "Pipeline(StandardScaler, LogisticRegression)")
    assert pipeline[1].status == "n/a"


def test_targets_at_concurrencies_not_measured_are_not_applicable() -> None:
    runs = [run(key, 2, 100, 10) for key in "ABC"]
    assert {t.status for t in check_targets(ratios(runs), "RandomForestClassifier")} == {"n/a"}


@pytest.fixture(scope="module")
def smoke(
    iris_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any]]:
    """`python -m bench.run` for one second per configuration at concurrency 2: stdout and JSON."""
    try:
        ensure_wrk()
    except WrkError as exc:
        pytest.skip(f"the benchmark needs wrk: {exc}")
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench.json"
    command = [
        str(BIN / "python"), "-m", "bench.run", "--bundle", str(iris_bundle), "--duration", "1",
        "--repetitions", "1", "--concurrency", "2", "--no-warmup", "--floor-calls", "5",
        "--configs", "A,B,C,B-traces", "--otlp-sink", "--json-out", str(out),
        "--work-dir", str(tmp / "work"),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(out.read_text())


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
def test_smoke_prints_a_row_per_configuration_with_numbers(smoke: tuple[str, Any]) -> None:
    header = ["config", "conc", "req/s", "p50", "ms", "p99", "ms", "cpu", "us/req", "cpu", "busy"]
    rows = table_rows(smoke[0], [*header, "reps", "errors"])
    assert [row[0] for row in rows] == ["A", "B", "B-traces", "C"]
    for row in rows:
        assert len(row) == len(TABLE_COLUMNS)
        assert int(row[1]) == 2
        assert all(float(value) >= 0 for value in row[2:5])
        assert float(row[5]) > 0  # the service's CPU per request
        assert 0 < float(row[6]) <= 2.5  # cores kept busy: one worker, and the arbiter
        assert (int(row[7]), int(row[8])) == (1, 0)  # one repetition, no wrk errors


@pytest.mark.slow
def test_smoke_prints_the_ratios_and_the_targets(smoke: tuple[str, Any]) -> None:
    stdout = smoke[0]
    (row,) = table_rows(
        stdout, ["conc", "B/A", "req/s", "B/C", "req/s", "B/C", "p50", "B-A", "cpu", "us/req"]
    )
    assert len(row) == len(RATIO_COLUMNS)
    assert row[0] == "2"
    assert all(float(value) > 0 for value in row[1:4])
    float(row[4])  # B's extra CPU per request: a number, of either sign in a one-second run
    assert re.search(r"model-only floor \(RandomForestClassifier\.predict_proba\), 64 row", stdout)
    assert len(re.findall(r"^\[ ?(pass|fail|n/a)\] ", stdout, flags=re.MULTILINE)) == 3
    (variant,) = table_rows(
        stdout,
        ["config", "conc", "req/s", "over", "A", "req/s", "over", "B", "cpu", "us/req", "-", "B"],
    )
    assert variant[:2] == ["B-traces", "2"]
    assert all(float(value) > 0 for value in variant[2:4])
    float(variant[4])


@pytest.mark.slow
def test_smoke_json_holds_runs_medians_ratios_commit_and_machine(smoke: tuple[str, Any]) -> None:
    document = smoke[1]
    assert re.fullmatch(r"[0-9a-f]{40}", document["git"]["commit"])
    assert document["machine"]["nproc"] >= 1
    assert document["machine"]["cpu_model"]
    assert set(document["configs"]) == {"A", "B", "C", "B-traces"}
    (model,) = document["models"]
    assert model["estimator"] == "RandomForestClassifier"
    assert [r["config"] for r in model["runs"]] == ["A", "B", "C", "B-traces"]
    assert all(r["errors"]["status"] == 0 for r in model["runs"])
    assert {c["config"] for c in model["summary"]} == {"A", "B", "C", "B-traces"}
    (variant,) = model["versus_off"]
    assert variant["config"] == "B-traces"
    assert variant["over_a"] > 0
    assert isinstance(variant["cpu_us_minus_b"], float)
    assert all(r["cpu_us_per_request"] > 0 for r in model["runs"])
    assert all(c["cpu_busy"] > 0 for c in model["summary"])
    (ratio,) = model["ratios"]
    assert ratio["observed_over_off"] > 0
    assert ratio["batched_over_unbatched"] > 0
    assert [b["rows"] for b in model["floor"]["batches"]] == [1, 64]
    assert all(b["us_per_row"] > 0 for b in model["floor"]["batches"])
    assert {t["status"] for t in model["targets"]} <= {"pass", "fail", "n/a"}
    assert document["traces"]["mode"] == "local OTLP sink"  # --otlp-sink
    assert document["traces"]["received"]["requests"] >= 1  # B and C exported their spans


def cost_rows(medians: dict[str, float]) -> list[Row]:
    configs = {c.key: c for c in COST_CONFIGS}
    return [Row(configs[key], [value - 1.0, value, value + 5.0]) for key, value in medians.items()]


def test_a_parts_cost_is_b_minus_b_without_it() -> None:
    rows = cost_rows({"A": 100.0, "B": 160.0, "B-traces": 145.0, "B-access-log": 156.0})
    assert part_costs(rows) == {"traces (10 % sampled)": 15.0, "access lines": 4.0}


def test_the_traces_cost_splits_into_every_requests_share_and_the_traced_ones() -> None:
    rows = cost_rows({"A": 100.0, "B": 160.0, "B-untraced": 150.0, "B-traces": 144.0})
    assert list(tracing_split(rows).values()) == [6.0, 10.0]
    assert tracing_split(cost_rows({"A": 100.0, "B": 160.0})) == {}


def test_one_traced_request_costs_the_all_traced_excess_over_the_untraced_share() -> None:
    rows = cost_rows({"A": 100.0, "B": 160.0, "B-traced": 295.0})
    assert traced_request_cost(rows) == pytest.approx((295.0 - 160.0) / 0.9)
    assert traced_request_cost(cost_rows({"A": 100.0, "B": 160.0})) is None


@pytest.mark.slow
def test_costs_smoke_prints_cpu_per_request_and_writes_json(
    iris_bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "costs.json"
    command = [
        str(BIN / "python"), "-m", "bench.costs", "--bundle", str(iris_bundle),
        "--configs", "A,B,B-access-log,B-traced", "--requests", "200", "--warmup", "20",
        "--repetitions", "1", "--otlp-sink", "--json-out", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {
        line.split()[0]: float(line.split()[1])
        for line in done.stdout.splitlines()
        if line.split()[:1] in (["A"], ["B"], ["B-access-log"], ["B-traced"])
    }
    assert set(rows) == {"A", "B", "B-access-log", "B-traced"}
    assert all(value > 0 for value in rows.values())
    assert re.search(r"^observability in all \(B - A\): -?[0-9.]+ µs", done.stdout, re.MULTILINE)
    assert re.search(r"^  access lines +-?[0-9.]+ µs per request$", done.stdout, re.MULTILINE)
    document = json.loads(out.read_text())
    assert set(document["configs"]) == {"A", "B", "B-access-log", "B-traced"}
    # --otlp-sink: the traced runs exported their spans (flushed at the app's shutdown)
    assert document["traces"]["mode"] == "local OTLP sink"
    assert document["traces"]["received"]["requests"] >= 1
    assert document["configs"]["B"]["median"] == pytest.approx(rows["B"], abs=0.05)
    assert set(document["part_costs"]) == {"access lines"}
    assert document["unit"] == "us"
    assert re.fullmatch(r"[0-9a-f]{40}", document["git"]["commit"])


CACHEGRIND_SUMMARY = """==4242== Cachegrind, a high-precision tracing profiler
==4242== Command: python -c pass
==4242==
==4242== I   refs:      27,191,211,938
"""


def test_the_instruction_total_is_read_from_cachegrinds_summary() -> None:
    assert parse_total(CACHEGRIND_SUMMARY) == 27_191_211_938
    with pytest.raises(CountError, match="no instruction total"):
        parse_total("==4242== Command: python -c pass\n")


def test_instructions_per_request_cancel_what_both_runs_do() -> None:
    assert per_unit(27_191_000_000, 28_420_000_000, 2_000) == 614_500.0
    with pytest.raises(ValueError, match="more work"):
        per_unit(1, 2, 0)


def test_counted_instructions_grow_with_the_work_done(tmp_path: Path) -> None:
    """A real valgrind run: a loop of 300,000 more iterations costs millions more instructions,
    and the same command counts the same within a fraction of a percent."""
    try:
        ensure_command("valgrind", "valgrind")
    except MissingCommandError as exc:
        pytest.skip(f"counting instructions needs valgrind: {exc}")
    loop = "import sys\nfor _ in range(int(sys.argv[1])): pass\n"
    script = tmp_path / "loop.py"
    script.write_text(loop)

    def count(iterations: int) -> int:
        command = [sys.executable, "-S", str(script), str(iterations)]
        return count_instructions(command, {"PATH": "/usr/bin:/bin"}, tmp_path, 120)

    small, again, large = count(0), count(0), count(300_000)
    assert abs(again - small) < small * 0.005
    assert per_unit(small, large, 300_000) > 10  # a Python loop iteration is tens of instructions


def test_instruction_mode_pairs_each_configurations_two_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every configuration and repetition: (its longer run - its shorter) / the extra requests."""
    per_request = {"A": 600_000, "B": 950_000}
    seen: list[tuple[str, int]] = []
    endpoints: dict[str, str | None] = {}

    def fake_count(command: list[str], env: dict[str, str], cwd: Path, timeout: float) -> int:
        requests = int(command[command.index("--requests") + 1])
        key = Path(command[command.index("--out") + 1]).name.split("-")[0]
        seen.append((key, requests))
        endpoints[key] = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        startup = 5_000_000_000 + len(seen)  # the same in both runs, give or take a little
        return startup + per_request[key] * requests

    monkeypatch.setattr("bench.instructions.count_instructions", fake_count)
    configs = [c for c in COST_CONFIGS if c.key in per_request]
    args = argparse.Namespace(requests=2_000, warmup=10, concurrency=4, repetitions=2)
    sink = "http://127.0.0.1:4318"
    rows = _count(tmp_path / "bundle", configs, args, tmp_path, sink)
    assert sorted(seen) == sorted([(k, n) for k in "AB" for n in (200, 2_200)] * 2)
    assert endpoints == {"A": None, "B": sink}  # --otlp-sink: the tracing configurations export
    assert {r.config.key: len(r.runs) for r in rows} == {"A": 2, "B": 2}
    for row in rows:
        assert row.median == pytest.approx(per_request[row.config.key] / 1000, abs=0.01)
