"""What the gunicorn master does so that forked workers share its memory and inherit no threads.

The master loads the bundle once and forks every worker from that state (a restarted one too),
so a worker's estimator is the master's, page for page, until something writes to it. Two things
would undo that or make the fork unsafe:

- Threads. A thread alive in the master exists in no child, but the locks it held at the fork
  stay held there. numpy's and scipy's OpenBLAS start a thread pool as they load; with
  `OPENBLAS_NUM_THREADS=1` set before the first import they start none, and each worker restores
  the pool's size after the fork (`restore_thread_pools`). scikit-learn's OpenMP threads start at
  the first parallel region, which only the workers' warm-up and predictions reach; the OTel SDK,
  the log writer and the inference thread are made in each worker after it forks.
- The cyclic garbage collector. A collection in a worker writes to the header of every object it
  walks, which copies the page holding it. `freeze_heap` moves everything alive in the master into
  the permanent generation just before each fork, so workers never walk it. (numpy buffers, most
  of a forest's bytes, are not objects the collector walks and are never written.)
"""

from __future__ import annotations

import gc
import os

_BLAS_ENV = "OPENBLAS_NUM_THREADS"
_limited_here = False


def keep_thread_pools_out() -> None:
    """Before numpy loads in the master: its BLAS starts no thread pool (unless configured)."""
    global _limited_here
    if _BLAS_ENV not in os.environ:
        # OpenBLAS reads this once, as the library loads: it must be set before any numpy import.
        os.environ[_BLAS_ENV] = "1"
        _limited_here = True


def restore_thread_pools() -> None:
    """In a worker after the fork: the BLAS pool size OpenBLAS would have chosen by itself."""
    if not _limited_here:
        return
    os.environ.pop(_BLAS_ENV, None)
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(limits=len(os.sched_getaffinity(0)), user_api="blas")


def freeze_heap() -> None:
    """Collect once, then keep every live object out of later collections (before a fork)."""
    gc.collect()
    gc.freeze()


def thread_count(pid: int | None = None) -> int:
    """Threads of a process (this one by default), from /proc."""
    return len(os.listdir(f"/proc/{pid or os.getpid()}/task"))
