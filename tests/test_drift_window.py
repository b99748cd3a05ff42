"""The sliding window: slots that age out, and files that pool every process's counts."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from lucidserve.observability.drift_window import (
    RESETTING,
    LocalWindow,
    SharedWindow,
    WindowLayout,
    window_totals,
)
from tests.support.processes import wait_until

BINS = ["a", "b", "c"]
LAYOUT = WindowLayout.build(window_seconds=4, slot_seconds=1, bins=BINS)
SPAWN = multiprocessing.get_context("spawn")


def counts(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def write_in_child(directory: Path, values: list[int], now: float, ready: Path | None) -> None:
    """Runs in a separate process: count once, then either exit or wait to be killed."""
    SharedWindow(LAYOUT, directory).add(np.array(values, dtype=np.int64), now)
    if ready is not None:
        ready.touch()
        time.sleep(60)  # the test SIGKILLs this process long before


def run_child(directory: Path, values: list[int], now: float) -> None:
    child = SPAWN.Process(target=write_in_child, args=(directory, values, now, None))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0


def test_a_slot_counts_until_the_window_has_moved_past_it() -> None:
    window = LocalWindow(LAYOUT)
    window.add(counts(1, 2, 3), now=100.5)
    assert window.totals(100.5).tolist() == [1, 2, 3]
    assert window.totals(103.99).tolist() == [1, 2, 3]
    assert window.totals(104.0).tolist() == [0, 0, 0]


def test_the_window_sums_its_slots_and_forgets_the_oldest_first() -> None:
    window = LocalWindow(LAYOUT)
    window.add(counts(1, 0, 0), now=100.0)
    window.add(counts(0, 1, 0), now=101.0)
    window.add(counts(0, 0, 1), now=103.0)
    assert window.totals(103.5).tolist() == [1, 1, 1]
    assert window.totals(104.5).tolist() == [0, 1, 1]
    assert window.totals(105.5).tolist() == [0, 0, 1]


def test_a_reused_ring_row_starts_from_zero() -> None:
    window = LocalWindow(LAYOUT)
    window.add(counts(5, 5, 5), now=100.0)
    window.add(counts(1, 0, 0), now=104.0)  # same row, four slots later
    assert window.totals(104.0).tolist() == [1, 0, 0]


def test_slots_from_the_future_are_ignored() -> None:
    window = LocalWindow(LAYOUT)
    window.add(counts(1, 1, 1), now=200.0)
    assert window.totals(150.0).tolist() == [0, 0, 0]


def test_a_row_being_reset_is_not_read() -> None:
    ring = np.zeros((4, 4), dtype=np.int64)
    ring[:, 0] = [100, 101, RESETTING, 103]
    ring[:, 1:] = 1
    assert window_totals(ring, current=103, slots=4).tolist() == [3, 3, 3]


def test_the_layout_is_bounded() -> None:
    layout = WindowLayout.build(3600, 60, [str(i) for i in range(70)])
    assert layout.slots == 60
    assert layout.size * 8 < 40_000  # bytes per process file
    with pytest.raises(ValueError, match="slots"):
        WindowLayout.build(3600, 0.1, BINS)


def test_two_processes_counting_into_one_directory_are_pooled(tmp_path: Path) -> None:
    run_child(tmp_path, [1, 2, 3], now=1000.0)
    run_child(tmp_path, [10, 20, 30], now=1001.0)
    reader = SharedWindow(LAYOUT, tmp_path)
    assert reader.totals(1001.5).tolist() == [11, 22, 33]
    assert reader.totals(1004.5).tolist() == [10, 20, 30]


def test_a_killed_writers_counts_stay_in_the_window(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = SPAWN.Process(target=write_in_child, args=(tmp_path, [4, 5, 6], 1000.0, ready))
    child.start()
    try:
        wait_until(ready.exists, timeout=60, what="the child to count")
    finally:
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
    assert SharedWindow(LAYOUT, tmp_path).totals(1000.0).tolist() == [4, 5, 6]


def test_a_new_process_adopts_a_dead_ones_file(tmp_path: Path) -> None:
    run_child(tmp_path, [1, 1, 1], now=1000.0)
    run_child(tmp_path, [2, 2, 2], now=1000.0)
    files = sorted(p.name for p in tmp_path.glob("*.ring"))
    assert len(files) == 1  # the second child took over the first one's file
    writer = SharedWindow(LAYOUT, tmp_path)
    writer.add(counts(3, 3, 3), now=1000.0)
    assert [p.name for p in tmp_path.glob("*.ring")] == [f"{os.getpid()}.ring"]
    assert writer.totals(1000.0).tolist() == [6, 6, 6]


def test_a_dead_processs_file_is_deleted_once_its_slots_left_the_window(tmp_path: Path) -> None:
    run_child(tmp_path, [1, 1, 1], now=1000.0)
    reader = SharedWindow(LAYOUT, tmp_path)
    assert reader.totals(1003.0).tolist() == [1, 1, 1]
    assert len(list(tmp_path.glob("*.ring"))) == 1
    assert reader.totals(1004.0).tolist() == [0, 0, 0]
    assert list(tmp_path.glob("*.ring")) == []


def test_a_live_processs_idle_file_is_kept(tmp_path: Path) -> None:
    writer = SharedWindow(LAYOUT, tmp_path)
    writer.add(counts(1, 1, 1), now=1000.0)
    assert writer.totals(2000.0).tolist() == [0, 0, 0]
    writer.add(counts(2, 0, 0), now=2000.0)
    assert writer.totals(2000.0).tolist() == [2, 0, 0]


def test_files_of_another_layout_are_ignored(tmp_path: Path) -> None:
    other = WindowLayout.build(window_seconds=4, slot_seconds=1, bins=["x", "y", "z"])
    SharedWindow(other, tmp_path).add(counts(7, 7, 7), now=1000.0)
    SharedWindow(LAYOUT, tmp_path / "unused").add(counts(0, 0, 0), now=1000.0)
    assert SharedWindow(LAYOUT, tmp_path).totals(1000.0).tolist() == [0, 0, 0]


def test_a_writer_recreates_its_file_when_the_directory_was_wiped(tmp_path: Path) -> None:
    writer = SharedWindow(LAYOUT, tmp_path)
    writer.add(counts(1, 0, 0), now=1000.0)
    (tmp_path / f"{os.getpid()}.ring").unlink()
    writer.add(counts(0, 1, 0), now=1001.0)
    assert writer.totals(1001.0).tolist() == [0, 1, 0]
