"""The container image: the Dockerfile passes its linters, and the image built from it serves.

The build-and-run tests (marked slow) build the project's Dockerfile with buildah on a local Debian
bookworm base (no registry is reachable here), then start the image's own entrypoint as its
unprivileged user with the tmpfs mounts Kubernetes gives it, and use it like a client would.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.image import (
    BUILDAH_RUN_FILES,
    Container,
    base_image,
    build_image,
    entry_processes,
    inspect_image,
    missing_prerequisite,
    process_uid,
    stop_entry_process,
)
from tests.support.linters import run_checkov, run_hadolint
from tests.support.processes import REPO, ManagedProcess, free_port, wait_until

DOCKERFILE = REPO / "Dockerfile"
UID = 10001
# Where the Deployment mounts emptyDirs (deploy/k8s/base/deployment.yaml): the only writable paths.
WRITABLE_MOUNTS = ("/tmp", "/run/lucidserve/metrics", "/run/lucidserve/tmp")
IRIS_SAMPLE = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


# --- the Dockerfile's linters -------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_passes_the_dockerfile() -> None:
    result = run_checkov("dockerfile", DOCKERFILE)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout


def test_every_skipped_dockerfile_check_says_why() -> None:
    skips = re.findall(r"#\s*checkov:skip=(\S+?):(.*)", DOCKERFILE.read_text())
    assert all(len(reason.strip()) >= 20 for _, reason in skips), skips


def test_build_context_excludes_everything_the_dockerfile_does_not_copy() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    copied = {
        path
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for path in line.split()[1:-1]
    }
    included = {pattern.removeprefix("!").rstrip("/") for pattern in patterns if pattern[0] == "!"}
    assert copied == included


# --- the image, built and started ---------------------------------------------------------------


@dataclass
class RunningImage:
    container: Container
    process: ManagedProcess
    entrypoint: list[str]
    config: dict[str, Any]
    url: str
    port: int
    metrics_url: str


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    log = tmp_path_factory.mktemp("image") / "build.log"
    return build_image(base_image(), log)


@pytest.fixture(scope="module")
def running(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningImage]:
    """The image's entrypoint + command, as UID 10001 with two workers, on a free loopback port."""
    config = inspect_image(image)
    oci = config["OCIv1"]["config"]
    argv = [*oci["Entrypoint"], *(oci.get("Cmd") or [])]
    port, metrics_port = free_port(), free_port()
    container = Container.create(image)
    log = tmp_path_factory.mktemp("container") / "serve.log"
    env = {
        "LUCIDSERVE_HOST": "127.0.0.1",
        "LUCIDSERVE_PORT": str(port),
        "LUCIDSERVE_METRICS_PORT": str(metrics_port),
        "LUCIDSERVE_WORKERS": "2",
    }
    process = container.start(argv, log, user=oci["User"], env=env, tmpfs=WRITABLE_MOUNTS)
    url = f"http://127.0.0.1:{port}"
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    running = RunningImage(container, process, argv, config, url, port, metrics_url)

    def ready() -> bool:
        if process.proc.poll() is not None:
            raise RuntimeError(f"the container exited early:\n{process.output()[-4000:]}")
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200

    try:
        wait_until(ready, timeout=120, interval=0.2, what=f"{url}/readyz in the container")
        yield running
    finally:
        stop_entry_process(process, argv[0])
        container.remove()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_image_runs_as_the_unprivileged_user(running: RunningImage) -> None:
    assert running.config["OCIv1"]["config"]["User"] == f"{UID}:{UID}"
    pids = entry_processes(running.process, running.entrypoint[0])
    assert len(pids) >= 3  # the gunicorn master and its two workers
    assert {process_uid(pid) for pid in pids} == {UID}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_image_answers_a_prediction(running: RunningImage) -> None:
    response = httpx.post(f"{running.url}/v1/predict", json={"samples": [IRIS_SAMPLE]}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "iris"
    assert body["predictions"][0]["label"] == "setosa"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_image_exposes_metrics_merged_across_workers(running: RunningImage) -> None:
    before = _setosa_predictions(running.metrics_url)
    for _ in range(6):  # a new connection each, so both workers take some
        response = httpx.post(f"{running.url}/v1/predict", json={"samples": [IRIS_SAMPLE]})
        assert response.status_code == 200
    text = httpx.get(running.metrics_url, timeout=30).text
    assert _setosa_predictions(running.metrics_url) - before == 6
    assert re.search(r'^model_ready\{[^}]*model_name="iris"[^}]*\} 1\.0$', text, re.M)
    assert re.search(
        r'^http_server_request_duration_seconds_count\{[^}]*http_route="/v1/predict"', text, re.M
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_image_healthcheck_passes_with_python_alone(running: RunningImage) -> None:
    check = running.config["Docker"]["config"]["Healthcheck"]["Test"]
    assert check[0] == "CMD"
    assert not {"curl", "wget"} & set(" ".join(check).split())
    result = running.container.run(
        check[1:], user=f"{UID}:{UID}", env={"LUCIDSERVE_PORT": str(running.port)}
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_image_carries_oci_labels(running: RunningImage) -> None:
    labels = running.config["OCIv1"]["config"]["Labels"]
    for key in ("title", "description", "source", "licenses", "version", "revision", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_image_code_and_model_are_read_only_to_the_server(running: RunningImage) -> None:
    with running.container.mounted() as root:
        for top in ("opt/venv", "opt/lucidserve"):
            for path in [root / top, *(root / top).rglob("*")]:
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    continue
                assert info.st_uid == 0, path
                assert info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) == 0, path
        assert (root / "opt/lucidserve/models/default/card.json").is_file()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_image_holds_no_pip_compiler_or_caches(running: RunningImage) -> None:
    with running.container.mounted() as root:
        assert not list((root / "opt/venv/bin").glob("pip*"))
        for compiler in ("gcc", "cc", "g++", "clang"):
            assert not (root / "usr/bin" / compiler).exists(), compiler
        assert not (root / "root/.cache/pip").exists()
        assert not (root / "build").exists()
        assert not (root / "opt/build-backend").exists()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_server_writes_nothing_outside_its_writable_mounts(running: RunningImage) -> None:
    # Use the server first, so request-time writes would show up too.
    httpx.post(f"{running.url}/v1/predict", json={"samples": [IRIS_SAMPLE]}, timeout=30)
    httpx.get(running.metrics_url, timeout=30)
    written = running.container.written_files()
    if written is None:
        pytest.skip("buildah's storage driver keeps no overlay upper directory to inspect")
    assert written - BUILDAH_RUN_FILES == set()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_image_drains_and_exits_zero_on_sigterm(running: RunningImage) -> None:
    code = stop_entry_process(running.process, running.entrypoint[0])
    assert code == 0, running.process.output()[-4000:]
    assert "Shutting down: Master" in running.process.output()


def _setosa_predictions(metrics_url: str) -> float:
    """model_predictions_total for setosa, summed over the worker processes' files."""
    response = httpx.get(metrics_url, timeout=30)
    assert response.status_code == 200
    pattern = r'^model_predictions_total\{[^}]*label="setosa"[^}]*\} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, response.text, re.M))
