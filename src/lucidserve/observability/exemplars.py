"""Exemplars that survive prometheus_client's multiprocess mode.

prometheus_client drops exemplars when several processes share metric files. Here each worker
keeps the latest exemplar per histogram bucket in a small memory-mapped file of fixed slots
(`exemplars_<pid>.bin`, beside the metric files), and the worker answering /metrics attaches the
newest exemplar of every bucket across all files to the merged histograms.

Slot layout (256 bytes): seq u32 | key length u16 | pad | trace id (32 ASCII hex) | value f64 |
timestamp f64 | key (UTF-8, at most 200 bytes). A writer makes `seq` odd while it writes and
even after; a reader skips a slot whose seq is odd or changed while it was copied.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path

from prometheus_client.utils import floatToGoString

SLOT_BYTES = 256
SLOTS = 2048
KEY_BYTES = 200
_HEADER = struct.Struct("<IH2x32sdd")  # seq, key length, trace id, value, timestamp
_SEQ = struct.Struct("<I")
SUFFIX = ".bin"
PREFIX = "exemplars_"


def bucket_key(
    sample_name: str, labels: dict[str, str], upper_bounds: Sequence[float], value: float
) -> str:
    """The key of the `_bucket` sample that `value` falls in, matching the exposition's labels."""
    index = bisect_left(upper_bounds, value)
    le = floatToGoString(upper_bounds[index]) if index < len(upper_bounds) else "+Inf"  # type: ignore[no-untyped-call]
    return json.dumps([sample_name, sorted({**labels, "le": le}.items())], separators=(",", ":"))


class ExemplarStore:
    """This process's exemplar slots; `record` is thread-safe and costs a few microseconds."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"{PREFIX}{os.getpid()}{SUFFIX}"
        with self.path.open("w+b") as handle:
            handle.truncate(SLOT_BYTES * SLOTS)
            self._map = mmap.mmap(handle.fileno(), SLOT_BYTES * SLOTS)
        self._slots: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, key: str, trace_id: str, value: float) -> None:
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                encoded = key.encode()
                if len(encoded) > KEY_BYTES or len(self._slots) >= SLOTS:
                    return  # bounded by design: a label explosion does not grow the file
                slot = self._slots[key] = len(self._slots)
                start = slot * SLOT_BYTES + _HEADER.size
                self._map[start : start + len(encoded)] = encoded
                key_length = len(encoded)
            else:
                key_length = len(key.encode())
            offset = slot * SLOT_BYTES
            seq = _SEQ.unpack_from(self._map, offset)[0]
            _SEQ.pack_into(self._map, offset, seq + 1)
            _HEADER.pack_into(
                self._map, offset, seq + 1, key_length, trace_id.encode(), value, time.time()
            )
            _SEQ.pack_into(self._map, offset, seq + 2)


def read_exemplars(directory: Path) -> dict[str, tuple[str, float, float]]:
    """The newest (trace id, value, timestamp) per bucket key across every worker's file."""
    newest: dict[str, tuple[str, float, float]] = {}
    for path in directory.glob(f"{PREFIX}*{SUFFIX}"):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        for offset in range(0, len(data) - SLOT_BYTES + 1, SLOT_BYTES):
            seq, key_length, trace, value, stamp = _HEADER.unpack_from(data, offset)
            if key_length == 0:
                break
            if seq % 2:
                continue  # torn: a write was in progress when the file was read
            start = offset + _HEADER.size
            key = data[start : start + key_length].decode(errors="replace")
            if key not in newest or newest[key][2] < stamp:
                newest[key] = (trace.decode(), value, stamp)
    return newest
