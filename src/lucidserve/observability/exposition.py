"""What /metrics reads in multiprocess mode: every worker's files, merged under a shared lock.

The server's master compacts a dead worker's counter and histogram files into archive files
(`compact_dead_worker`), under the same lock held exclusively, so counts are never lost and never
seen twice, and the number of files, hence scrape time, stays bounded as workers come and go.

This module is the one adapter to prometheus_client's multiprocess internals: the file format
(`prometheus_client.mmap_dict.MmapedDict`, read and written for compaction) and the merged
samples' names and labels that exemplar keys must match (exemplars.py `bucket_key`).
tests/test_library_contracts.py names prometheus_client when an upgrade changes either.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.samples import Exemplar, Sample

from lucidserve.observability.exemplars import PREFIX, SUFFIX, read_exemplars

LOCK_FILE = ".lock"
ARCHIVED_TYPES = ("counter", "histogram")


class PooledCollector:
    """A collector yielding the merged metrics of all workers, with their exemplars."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterable[Metric]:
        with _locked(self.directory, fcntl.LOCK_SH):
            files = [str(p) for p in self.directory.glob("*.db")]
            metrics = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
            exemplars = read_exemplars(self.directory)
        for metric in metrics:
            if metric.type == "histogram" and exemplars:
                metric.samples = [_with_exemplar(s, exemplars) for s in metric.samples]
            yield metric


def exemplar_key(sample: Sample) -> str:
    """The key that exemplars.py stores a bucket sample's exemplar under."""
    return json.dumps([sample.name, sorted(sample.labels.items())], separators=(",", ":"))


def _with_exemplar(sample: Sample, exemplars: dict[str, tuple[str, float, float]]) -> Sample:
    if not sample.name.endswith("_bucket"):
        return sample
    found = exemplars.get(exemplar_key(sample))
    if found is None:
        return sample
    trace_id, value, stamp = found
    return sample._replace(exemplar=Exemplar({"trace_id": trace_id}, value, stamp))


def compact_dead_worker(directory: Path, pid: int) -> None:
    """Fold a dead worker's counters and histograms into the archive files; drop its other files."""
    with _locked(directory, fcntl.LOCK_EX):
        for typ in ARCHIVED_TYPES:
            dead = directory / f"{typ}_{pid}.db"
            if not dead.exists():
                continue
            archive = MmapedDict(str(directory / f"{typ}_archive.db"))  # type: ignore[no-untyped-call]
            try:
                for key, value, stamp, _ in MmapedDict.read_all_values_from_file(str(dead)):  # type: ignore[no-untyped-call]
                    current, _ = archive.read_value(key)  # type: ignore[no-untyped-call]
                    archive.write_value(key, current + value, stamp)  # type: ignore[no-untyped-call]
            finally:
                archive.close()  # type: ignore[no-untyped-call]
            dead.unlink()
        (directory / f"{PREFIX}{pid}{SUFFIX}").unlink(missing_ok=True)


@contextmanager
def _locked(directory: Path, mode: int) -> Iterator[None]:
    with (directory / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
