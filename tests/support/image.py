"""The container image, built and run with buildah on this machine (no Docker engine, no registry).

The base is a local Debian bookworm image made by scripts/local-base-image.sh (debootstrap, cached);
the project's Dockerfile is built on it through the BASE_IMAGE build argument, and the image's own
entrypoint runs as its unprivileged user with `buildah run --isolation chroot`, on the host's
network, with tmpfs mounts where Kubernetes mounts emptyDirs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.processes import REPO, ManagedProcess, start_process

IMAGE = "localhost/lucidserve:test"
BASE_SCRIPT = REPO / "scripts" / "local-base-image.sh"
# Files `buildah run` itself may create in a container's root filesystem (bind-mount targets).
BUILDAH_RUN_FILES = frozenset({"etc/hosts", "etc/resolv.conf", "etc/hostname", "run/.containerenv"})


def buildah(
    *args: str, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run one buildah command, capturing its output."""
    return subprocess.run(
        ["buildah", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


def missing_prerequisite() -> str | None:
    """Why the image cannot be built and run here, or None when it can."""
    if os.geteuid() != 0:
        return "building the image with buildah and debootstrap needs root"
    for tool in ("buildah", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/system-packages.txt; run `make system-deps`)"
    info = buildah("info", check=False)
    if info.returncode != 0:
        return f"buildah cannot run here: {info.stderr.strip()[-500:]}"
    return None


def base_image() -> str:
    """The local bookworm + python3 base image's name (made on first use, then cached)."""
    result = subprocess.run(
        ["bash", str(BASE_SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{BASE_SCRIPT.name} failed:\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


def image_id(name: str) -> str | None:
    result = buildah("images", "--noheading", "--no-trunc", "--quiet", name, check=False)
    ids = result.stdout.split()
    return ids[0] if result.returncode == 0 and ids else None


def build_image(base: str, log_path: Path, tag: str = IMAGE) -> str:
    """Build the Dockerfile on `base` (layers cached between runs); returns the image name.

    Docker format keeps the HEALTHCHECK (the OCI format has no field for it). The image the tag
    pointed at before is removed, so repeated runs do not pile up images.
    """
    previous = image_id(tag)
    argv = [
        "buildah", "bud", "--isolation", "chroot", "--layers", "--format", "docker",
        "--build-arg", f"BASE_IMAGE={base}", "--tag", tag, "--file", "Dockerfile", ".",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        result = subprocess.run(
            argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, timeout=900, check=False
        )
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace")[-6000:]
        raise RuntimeError(f"buildah bud failed ({result.returncode}):\n{tail}")
    current = image_id(tag)
    if previous is not None and previous != current:
        buildah("rmi", previous, check=False, timeout=120)
    return tag


def inspect_image(name: str) -> dict[str, Any]:
    """`buildah inspect` of an image, as JSON."""
    return dict(json.loads(buildah("inspect", "--type", "image", name).stdout))


@dataclass
class Container:
    """A working container of the image, removed by `remove()`."""

    name: str

    @classmethod
    def create(cls, image: str) -> Container:
        out = buildah("from", "--pull=never", "--quiet", image, timeout=120).stdout
        return cls(name=out.strip().splitlines()[-1])

    def run_argv(
        self,
        argv: Sequence[str],
        *,
        user: str,
        env: Mapping[str, str],
        tmpfs: Sequence[str] = (),
    ) -> list[str]:
        """The `buildah run` command line that runs `argv` in this container."""
        cmd = ["buildah", "run", "--isolation", "chroot", "--user", user]
        for path in tmpfs:
            cmd += ["--mount", f"type=tmpfs,destination={path},tmpfs-mode=1777"]
        for key, value in env.items():
            cmd += ["--env", f"{key}={value}"]
        return [*cmd, self.name, "--", *argv]

    def start(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        user: str,
        env: Mapping[str, str],
        tmpfs: Sequence[str] = (),
    ) -> ManagedProcess:
        return start_process(
            self.run_argv(argv, user=user, env=env, tmpfs=tmpfs), log_path, name="container"
        )

    def run(
        self, argv: Sequence[str], *, user: str, env: Mapping[str, str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.run_argv(argv, user=user, env=env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    @contextmanager
    def mounted(self) -> Iterator[Path]:
        """The container's root filesystem, mounted on the host for the block's duration."""
        root = Path(buildah("mount", self.name).stdout.strip())
        try:
            yield root
        finally:
            buildah("umount", self.name, check=False)

    def written_files(self) -> set[str] | None:
        """Files this container wrote to its own root filesystem (overlay upper directory).

        None when the storage driver keeps no separate upper directory to read.
        """
        with self.mounted() as root:
            upper = root.parent / "diff"
            if not upper.is_dir():
                return None
            return {
                str(path.relative_to(upper))
                for path in upper.rglob("*")
                if not path.is_dir() or path.is_symlink()
            }

    def remove(self) -> None:
        buildah("rm", self.name, check=False, timeout=120)


def entry_processes(runner: ManagedProcess, argv0: str) -> list[int]:
    """The pids under `buildah run` that run the image's entrypoint `argv0` (and its children)."""
    return [
        pid
        for pid in _descendants(runner.pid)
        if argv0 in (cmdline := _cmdline(pid)) and not cmdline[0].startswith("buildah")
    ]


def entry_process(runner: ManagedProcess, argv0: str) -> int | None:
    """The pid of the image's entrypoint under `buildah run`: the outermost one running argv0."""
    pids = entry_processes(runner, argv0)
    return next((pid for pid in pids if _parent(pid) not in pids), None)


def process_uid(pid: int) -> int | None:
    """The real user id of a process, or None when it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith("Uid:")), None)


def stop_entry_process(runner: ManagedProcess, argv0: str, timeout: float = 60) -> int:
    """SIGTERM the entrypoint itself (buildah would SIGKILL it); returns buildah's exit code."""
    pid = entry_process(runner, argv0)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
    try:
        return runner.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return runner.stop(signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    queue = [pid]
    while queue:
        current = queue.pop(0)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.append(child)
                    queue.append(child)
    return found


def _cmdline(pid: int | None) -> list[str]:
    if pid is None:
        return []
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])
