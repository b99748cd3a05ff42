"""Sliding-window bin counts, pooled over every worker process: a ring of time slots.

Time is cut into slots of `slot_seconds` (slot number = floor(unix time / slot_seconds)). A ring
holds one row per slot, `slots` rows in all; a row is [slot number, count of cell 0, cell 1, ...],
all int64. Counting into a slot whose row still holds an older slot number first resets the row.
The window at time t is the `slots` most recent slot numbers, the current one included: it holds
every observation younger than window - slot seconds and none older than window seconds.

Two stores share that ring:

- `LocalWindow`: a numpy array in this process (one process, no multiprocess directory).
- `SharedWindow`: one memory-mapped file per writer process in a directory (`<pid>.ring`), so
  every worker reads the same files and answers with the same pooled totals. Files outlive their
  process, so a SIGKILLed worker's counts stay in the window. A new process adopts the file of a
  dead one (atomic rename) and keeps counting into it, and files whose process is dead and whose
  slots have all left the window are deleted: the number of files stays at the number of live
  writers plus, at most, the dead ones not yet replaced.

Reads take no lock. Every cell is an aligned 8-byte integer (never torn). A writer resetting a row
first marks it with slot number -1, then zeroes it, then writes the new slot number; a reader
copies the slot numbers, then the counts, then the slot numbers again, and drops rows whose number
changed in between or is -1 (such a row is at the very edge of the window; the next read has it).
A file renamed by an adopting process while being listed makes the reader list the files again.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = 0x4C55434944524654  # "LUCIDRFT"
FORMAT_VERSION = 1
HEADER_CELLS = 8
MAX_SLOTS = 10_000
RESETTING = -1
READ_ATTEMPTS = 3
SUFFIX = ".ring"


@dataclass(frozen=True)
class WindowLayout:
    """What a ring holds: slots of `slot_seconds`, `cells` counters, and a key naming the bins."""

    slots: int
    slot_seconds: float
    cells: int
    key: int

    @classmethod
    def build(cls, window_seconds: float, slot_seconds: float, bins: Sequence[str]) -> WindowLayout:
        """The layout for `bins` (one name per cell) over `window_seconds` cut into slots."""
        slots = math.ceil(window_seconds / slot_seconds - 1e-9)
        if not 1 <= slots <= MAX_SLOTS:
            raise ValueError(
                f"a drift window of {window_seconds} s in slots of {slot_seconds} s has {slots} "
                f"slots; between 1 and {MAX_SLOTS} are supported"
            )
        digest = hashlib.sha256("\n".join(bins).encode()).digest()
        return cls(
            slots, slot_seconds, len(bins), int.from_bytes(digest[:8], "little", signed=True)
        )

    def slot(self, now: float) -> int:
        """The slot number of unix time `now`."""
        return math.floor(now / self.slot_seconds)

    def header(self) -> np.ndarray:
        micros = round(self.slot_seconds * 1e6)
        values = [MAGIC, FORMAT_VERSION, self.slots, self.cells, micros, self.key, 0, 0]
        return np.array(values, dtype=np.int64)

    @property
    def size(self) -> int:
        """Cells in a ring file: header plus one row per slot."""
        return HEADER_CELLS + self.slots * (1 + self.cells)


class LocalWindow:
    """The ring in this process's memory."""

    def __init__(self, layout: WindowLayout) -> None:
        self.layout = layout
        self._ring = empty_ring(layout)
        self._lock = threading.Lock()

    def add(self, counts: np.ndarray, now: float) -> None:
        """Add one batch's cell counts to the slot of `now`."""
        with self._lock:
            add_to_ring(self._ring, self.layout.slot(now), counts)

    def totals(self, now: float) -> np.ndarray:
        """Cell counts over the window ending at `now`."""
        return window_totals(self._ring, self.layout.slot(now), self.layout.slots)


class SharedWindow:
    """One ring file per writer process in `directory`; totals pool every file."""

    def __init__(self, layout: WindowLayout, directory: Path) -> None:
        self.layout = layout
        self.directory = directory
        self._lock = threading.Lock()
        self._pid = -1
        self._slot = -1
        self._ring: np.ndarray | None = None

    @property
    def _own(self) -> Path:
        return self.directory / f"{os.getpid()}{SUFFIX}"

    def add(self, counts: np.ndarray, now: float) -> None:
        """Add one batch's cell counts to the slot of `now`, in this process's file."""
        slot = self.layout.slot(now)
        with self._lock:
            # Open on the first call (and again after a fork); once per slot, check that the file is
            # still there (a cleaner may have raced with a reused pid, or the directory was wiped).
            if self._ring is None or self._pid != os.getpid() or slot != self._slot:
                if self._ring is None or self._pid != os.getpid() or not self._own.exists():
                    self._ring = self._open_own_file()
                    self._pid = os.getpid()
                self._slot = slot
            add_to_ring(self._ring, slot, counts)

    def totals(self, now: float) -> np.ndarray:
        """Cell counts over the window ending at `now`, summed over every process's file."""
        current = self.layout.slot(now)
        for _ in range(READ_ATTEMPTS):
            total = np.zeros(self.layout.cells, dtype=np.int64)
            try:
                for path in self._ring_files():
                    summed = self._read_file(path, current)
                    if summed is None:
                        self._delete_if_abandoned(path)
                    else:
                        total += summed
            except FileNotFoundError:  # renamed by an adopting worker: list the files again
                continue
            return total
        return total

    def _read_file(self, path: Path, current: int) -> np.ndarray | None:
        """The file's window totals, or None when it is foreign or holds no live slot."""
        try:
            # Mapped, not read(): window_totals needs the slot numbers re-read after the counts.
            # The map closes when the last view goes, right after this call.
            cells = np.memmap(path, dtype=np.int64, mode="r")
        except ValueError:  # empty file
            return None
        if cells.size != self.layout.size or not np.array_equal(
            cells[:HEADER_CELLS], self.layout.header()
        ):
            return None
        ring = np.asarray(cells[HEADER_CELLS:]).reshape(self.layout.slots, 1 + self.layout.cells)
        if not in_window(ring[:, 0], current, self.layout.slots).any():
            return None
        return window_totals(ring, current, self.layout.slots)

    def _ring_files(self) -> list[Path]:
        try:
            return sorted(self.directory.glob(f"*{SUFFIX}"))
        except FileNotFoundError:
            return []

    def _delete_if_abandoned(self, path: Path) -> None:
        """Delete a file (found foreign or without a slot in the window) if its process is dead."""
        pid = _pid_of(path)
        if pid is not None and not _is_alive(pid):
            path.unlink(missing_ok=True)

    def _open_own_file(self) -> np.ndarray:
        self.directory.mkdir(parents=True, exist_ok=True)
        own = self._own
        if not own.exists():
            self._adopt_dead_file(own)
        ring = np.memmap(own, dtype=np.int64, mode="r+") if own.exists() else None
        if (
            ring is None
            or ring.size != self.layout.size
            or not np.array_equal(ring[:HEADER_CELLS], self.layout.header())
        ):
            self._create(own)
            ring = np.memmap(own, dtype=np.int64, mode="r+")
        return np.asarray(ring[HEADER_CELLS:]).reshape(self.layout.slots, 1 + self.layout.cells)

    def _adopt_dead_file(self, own: Path) -> None:
        """Take over a dead process's file (its counts stay in the window), if there is one."""
        for path in self._ring_files():
            pid = _pid_of(path)
            if pid is None or _is_alive(pid):
                continue
            try:
                path.rename(own)  # atomic: of two adopters, one wins, the other moves on
            except FileNotFoundError:
                continue
            return

    def _create(self, own: Path) -> None:
        """Write a fresh ring under a temporary name, then move it in place in one step."""
        staging = own.with_suffix(".staging")
        cells = np.concatenate([self.layout.header(), empty_ring(self.layout).reshape(-1)]).astype(
            np.int64
        )
        cells.tofile(staging)
        staging.replace(own)


def empty_ring(layout: WindowLayout) -> np.ndarray:
    """A ring with no slot in use."""
    ring = np.zeros((layout.slots, 1 + layout.cells), dtype=np.int64)
    ring[:, 0] = RESETTING
    return ring


def add_to_ring(ring: np.ndarray, slot: int, counts: np.ndarray) -> None:
    """Add `counts` to the row of `slot`, resetting the row first if it holds an older slot."""
    row = ring[slot % ring.shape[0]]
    if row[0] != slot:
        row[0] = RESETTING
        row[1:] = 0
        row[0] = slot
    row[1:] += counts


def window_totals(ring: np.ndarray, current: int, slots: int) -> np.ndarray:
    """Sum of the rows whose slot is among the `slots` most recent ones up to `current`."""
    before = ring[:, 0].copy()
    counts = ring[:, 1:].copy()
    after = ring[:, 0].copy()
    valid = (before == after) & in_window(before, current, slots)
    return np.asarray(counts[valid].sum(axis=0), dtype=np.int64)


def in_window(slot_numbers: np.ndarray, current: int, slots: int) -> np.ndarray:
    """Which slot numbers fall inside the window ending with slot `current`."""
    return (slot_numbers > current - slots) & (slot_numbers <= current)


def _pid_of(path: Path) -> int | None:
    stem = path.name.removesuffix(SUFFIX)
    return int(stem) if stem.isdigit() else None


def _is_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
