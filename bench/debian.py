"""Debian packages the benchmarks run (wrk, valgrind): installed with apt-get when absent."""

from __future__ import annotations

import os
import shutil
import subprocess


class MissingCommandError(Exception):
    """A command is not installed and cannot be installed here."""


def ensure_command(command: str, package: str) -> str:
    """The path of `command`, after installing `package` with apt-get when it is missing."""
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise MissingCommandError(
            f"{command} is not installed and cannot be installed here (needs root and apt-get)"
        )
    print(f"{command} is missing: installing {package} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        subprocess.run(install, env=env, capture_output=True, check=False)
    found = shutil.which(command)
    if not found:
        raise MissingCommandError(
            f"{command} could not be installed with apt-get (is a package index reachable?)"
        )
    return found
