"""What lucidserve relies on inside other libraries, each checked where it is used.

Each failure names the library and the lucidserve adapter to update, so an upgrade that changes
one of these says so at once instead of as a lost log line or a silently traced request.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
from gunicorn.workers.base import Worker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector
from uvicorn.config import Config
from uvicorn.server import Server

from lucidserve.observability.exemplars import bucket_key
from lucidserve.observability.exposition import compact_dead_worker, exemplar_key
from lucidserve.observability.tracing import EdgeSampledApp
from tests.support.processes import free_port


def test_gunicorn_runs_the_worker_through_its_public_run_method() -> None:
    source = inspect.getsource(Worker.init_process)
    assert "self.run()" in source, (
        "gunicorn: Worker.init_process no longer calls Worker.run(); server/worker.py "
        "(LucidWorker.run) serves through it"
    )


def test_uvicorn_serve_captures_signals_through_the_overridable_method() -> None:
    entered: list[bool] = []

    class Probe(Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            entered.append(True)
            yield

    async def app(scope: dict, receive: object, send: object) -> None:
        return None

    server = Probe(Config(app, host="127.0.0.1", port=free_port(), lifespan="off", log_config=None))
    server.should_exit = True
    asyncio.run(server.serve())
    assert entered, (
        "uvicorn: Server.serve no longer enters Server.capture_signals(); server/worker.py "
        "overrides it so that a SIGTERM is not raised again after shutdown, before the "
        "worker_exit hook flushes the log queue"
    )
    assert "sockets" in inspect.signature(Server.run).parameters, (
        "uvicorn: Server.run(sockets=...) changed; server/worker.py (LucidWorker.run) calls it"
    )


def _spans_for(skip: bool) -> int:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = EdgeSampledApp(telemetry={"tracer_provider": provider, "tracing": True})
    app.skip_tracing = lambda scope: skip

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"ok": "yes"}

    async def call() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/")).status_code == 200

    asyncio.run(call())
    return len(exporter.get_finished_spans())


def test_fastapi_skips_its_telemetry_for_a_request_marked_in_the_scope() -> None:
    assert _spans_for(skip=False) > 0, "FastAPI's native telemetry made no span: test setup"
    assert _spans_for(skip=True) == 0, (
        'FastAPI: scope["fastapi.telemetry"] = None no longer skips its native telemetry; '
        "observability/tracing.py (EdgeSampledApp) marks unsampled requests that way"
    )


def test_prometheus_client_files_can_be_compacted(tmp_path: Path) -> None:
    key = json.dumps(["requests_total", "requests_total", {"route": "/"}, "help"])
    for pid, value in ((101, 2.0), (102, 3.0)):
        live = MmapedDict(str(tmp_path / f"counter_{pid}.db"))  # type: ignore[no-untyped-call]
        live.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
        live.close()  # type: ignore[no-untyped-call]
        compact_dead_worker(tmp_path, pid)
    files = [str(p) for p in tmp_path.glob("*.db")]
    assert [Path(f).name for f in files] == ["counter_archive.db"], (
        "prometheus_client: a dead worker's file was not folded into the archive; "
        "observability/exposition.py (compact_dead_worker) uses prometheus_client.mmap_dict"
    )
    merged = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
    (sample,) = [s for m in merged for s in m.samples]
    assert sample.value == 5.0, (
        "prometheus_client: counts in the archive file are not what was written; "
        "observability/exposition.py (compact_dead_worker) uses prometheus_client.mmap_dict"
    )


def test_an_exemplar_key_matches_the_merged_bucket_sample(tmp_path: Path) -> None:
    labels = {"model_name": "iris", "model_version": "1"}
    buckets = (0.001, 0.0025, 1.0)
    key = json.dumps(
        ["model_inference_duration_seconds", "model_inference_duration_seconds_bucket",
         {**labels, "le": "0.0025"}, "help"]
    )  # fmt: skip
    live = MmapedDict(str(tmp_path / "histogram_7.db"))  # type: ignore[no-untyped-call]
    live.write_value(key, 1.0, 0.0)  # type: ignore[no-untyped-call]
    live.close()  # type: ignore[no-untyped-call]
    merged = MultiProcessCollector.merge(  # type: ignore[no-untyped-call]
        [str(tmp_path / "histogram_7.db")], accumulate=True
    )
    samples = [s for m in merged for s in m.samples if s.labels.get("le") == "0.0025"]
    assert samples, "prometheus_client: merged histogram has no bucket le=0.0025"
    stored = bucket_key("model_inference_duration_seconds_bucket", labels, buckets, 0.002)
    assert exemplar_key(samples[0]) == stored, (
        "prometheus_client: a merged bucket's name or `le` label is no longer spelled as "
        "observability/exemplars.py (bucket_key, floatToGoString) writes it"
    )
