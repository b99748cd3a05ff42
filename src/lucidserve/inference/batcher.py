"""Adaptive micro-batching: rows of concurrent requests share one estimator call.

When the model is free the consumer takes whatever is queued at once, so an idle service adds no
wait; under load the queue fills while the model is busy and the next call takes up to
`max_rows` rows. An optional `max_wait` holds a partial batch open a little longer. The queue is
bounded in rows: past the bound, `submit` raises `Overloaded` and the caller answers 503.

Inference runs on one dedicated thread, off the event loop, so probes and /metrics keep answering.
If a batched call fails, each request of the batch is retried alone, so one request's bad input
never fails another's; a request the estimator refuses alone gets `RejectedInput`, with the index
of a sample it refuses when bisection finds one.

Every request has a deadline: one still queued when it passes is dropped before inference
(`DeadlineExceeded`, counted), never computed for nobody. If the inference thread makes no
progress for `stall_seconds` while work waits, `stalled` turns true (liveness fails, the worker
stops its heartbeat to gunicorn, `model_inference_stalled` is 1) until it moves again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lucidserve.inference.predictor import BatchResult, Predictor, RejectedInput, Sample
from lucidserve.observability.lines import sampled_trace_id
from lucidserve.observability.recording import Observability

logger = logging.getLogger("lucidserve.inference")


class Overloaded(Exception):  # noqa: N818 - a condition, not a failure
    """The inference queue is full; the request should be retried later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the inference queue is full")
        self.retry_after = retry_after


class DeadlineExceeded(Exception):  # noqa: N818 - a condition, not a failure
    """The request's deadline passed while it waited in the queue; it was not computed."""


@dataclass(frozen=True)
class Outcome:
    """One request's share of a batch, with where its time went."""

    result: BatchResult
    enqueued: float
    started: float
    finished: float
    batch_rows: int


@dataclass
class _Pending:
    samples: Sequence[Sample]
    future: asyncio.Future[Outcome]
    trace_id: str | None
    deadline: float
    enqueued: float = field(default_factory=time.perf_counter)


class InferenceQueue:
    """Coalesces concurrent requests into batched predictions (or predicts each alone)."""

    def __init__(
        self,
        predictor: Predictor,
        observability: Observability,
        *,
        batching: bool,
        max_rows: int,
        max_wait_seconds: float,
        queue_max_rows: int,
        stall_seconds: float,
    ) -> None:
        self._predictor = predictor
        self._observability = observability
        self._batching = batching
        self._max_rows = max_rows
        self._max_wait = max_wait_seconds
        self._queue_max_rows = queue_max_rows
        self._pending: deque[_Pending] = deque()
        self._queued_rows = 0
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._turn = asyncio.Lock()  # unbatched: requests take the inference thread in turn
        self._tasks: list[asyncio.Task[None]] = []
        self._stall_seconds = stall_seconds
        self._progress_at = time.monotonic()  # the last finished call, or work arriving at rest
        self.stalled = False

    def start(self) -> None:
        """Start the consumer and the stall watch (call from the running event loop)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        if self._batching:
            self._tasks.append(loop.create_task(self._consume()))
        self._tasks.append(loop.create_task(self._watch()))

    async def stop(self) -> None:
        """Finish queued work, then stop the consumer and the inference thread."""
        while self._pending:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._executor.shutdown(wait=True)

    async def submit(self, samples: Sequence[Sample], deadline: float) -> Outcome:
        """Queue `samples` and wait for their predictions; `deadline` is a perf_counter time."""
        rows = len(samples)
        if self._queued_rows + rows > self._queue_max_rows and self._queued_rows > 0:
            self._observability.count_shed()
            raise Overloaded(retry_after=1)
        if self._queued_rows == 0:
            self._progress_at = time.monotonic()  # the stall clock starts with the work
        self._queued_rows += rows
        self._set_queue_gauge()
        trace_id = sampled_trace_id()
        try:
            if not self._batching:
                return await self._predict_alone(samples, trace_id, deadline)
            future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            self._pending.append(_Pending(samples, future, trace_id, deadline))
            self._wakeup.set()
            return await future
        finally:
            self._queued_rows -= rows
            self._set_queue_gauge()

    async def _predict_alone(
        self, samples: Sequence[Sample], trace_id: str | None, deadline: float
    ) -> Outcome:
        enqueued = time.perf_counter()
        async with self._turn:
            if time.perf_counter() > deadline:
                self._count_expired()
                raise DeadlineExceeded
            try:
                started, result, finished = await self._run(samples)
            except RejectedInput as exc:
                raise await self._locate(samples, exc) from None
        self._observability.record_queue_wait(started - enqueued)
        self._observability.record_batch(len(samples), result.inference_seconds, trace_id)
        return Outcome(result, enqueued, started, finished, len(samples))

    async def _run(self, samples: Sequence[Sample]) -> tuple[float, BatchResult, float]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._timed, samples)

    def _timed(self, samples: Sequence[Sample]) -> tuple[float, BatchResult, float]:
        started = time.perf_counter()
        try:
            result = self._predictor.predict(samples)
        finally:
            self._progress_at = time.monotonic()
        return started, result, time.perf_counter()

    async def _locate(self, samples: Sequence[Sample], exc: RejectedInput) -> RejectedInput:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._predictor.locate_rejected, samples, exc.reason
        )

    def stalled_for(self, now: float) -> float:
        """Seconds the inference thread has made no progress while work waited (0: none)."""
        return now - self._progress_at if self._queued_rows > 0 else 0.0

    async def _watch(self) -> None:
        interval = min(1.0, self._stall_seconds / 4)
        while True:
            await asyncio.sleep(interval)
            stalled = self.stalled_for(time.monotonic()) > self._stall_seconds
            if stalled != self.stalled:
                self.stalled = stalled
                self._observability.set_stalled(stalled)
                if stalled:
                    logger.error(
                        "inference stalled: no progress for %.0f s while work waits",
                        self._stall_seconds,
                        extra={"event": "inference_stalled", "queued_rows": self._queued_rows},
                    )

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = self._take()
            if self._max_wait > 0 and self._rows(batch) < self._max_rows:
                await asyncio.sleep(self._max_wait)
                batch.extend(self._take(self._max_rows - self._rows(batch)))
            if not batch:
                continue  # every request taken had passed its deadline
            samples = [s for p in batch for s in p.samples]
            try:
                started, result, finished = await loop.run_in_executor(
                    self._executor, self._timed, samples
                )
            except Exception:
                self._observability.count_inference_error()
                await self._retry_alone(batch)
                continue
            self._deliver(batch, started, result, finished)

    def _take(self, limit: int | None = None) -> list[_Pending]:
        """The next batch, in arrival order; requests past their deadline are dropped here."""
        budget = self._max_rows if limit is None else limit
        batch: list[_Pending] = []
        rows = 0
        now = time.perf_counter()
        while self._pending:
            head = self._pending[0]
            if head.deadline < now:
                self._pending.popleft()
                self._count_expired()
                if not head.future.done():
                    head.future.set_exception(DeadlineExceeded())
                continue
            size = len(head.samples)
            if batch and rows + size > budget:
                break
            if not batch and limit is not None and size > budget:
                break
            batch.append(self._pending.popleft())
            rows += size
        return batch

    @staticmethod
    def _rows(batch: list[_Pending]) -> int:
        return sum(len(p.samples) for p in batch)

    def _deliver(
        self, batch: list[_Pending], started: float, result: BatchResult, finished: float
    ) -> None:
        rows = self._rows(batch)
        offset = 0
        for pending in batch:
            size = len(pending.samples)
            share = result.select(offset, offset + size)
            offset += size
            self._observability.record_queue_wait(started - pending.enqueued)
            if not pending.future.done():
                outcome = Outcome(share, pending.enqueued, started, finished, rows)
                pending.future.set_result(outcome)
        self._observability.record_batch(rows, result.inference_seconds, batch[0].trace_id)

    async def _retry_alone(self, batch: list[_Pending]) -> None:
        for pending in batch:
            try:
                started, result, finished = await self._run(pending.samples)
            except Exception as exc:
                if len(batch) > 1:
                    self._observability.count_inference_error()
                failure: Exception = exc
                if isinstance(exc, RejectedInput):
                    failure = await self._locate(pending.samples, exc)
                if not pending.future.done():
                    pending.future.set_exception(failure)
                continue
            self._deliver([pending], started, result, finished)

    def _count_expired(self) -> None:
        self._observability.count_expired()

    def _set_queue_gauge(self) -> None:
        self._observability.set_queue_rows(self._queued_rows)
