"""Reading .github/workflows the way GitHub does, and running a workflow's shell steps locally."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

WORKFLOWS = REPO / ".github" / "workflows"
# The `with:` keys whose value decides whether docker/build-push-action pushes.
PUSHING_OUTPUT = re.compile(r"type=registry|push=true")


def workflow_files() -> list[Path]:
    """Every workflow file, sorted."""
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def load_workflow(path: Path) -> dict[str, Any]:
    """A workflow as a dict; YAML 1.1 reads the `on:` key as True, so it is put back."""
    document = yaml.safe_load(path.read_text())
    if True in document:
        document["on"] = document.pop(True)
    return dict(document)


def action_name(step: Mapping[str, Any]) -> str:
    """`owner/repo[/path]` of a step's `uses:` without the ref ('' for a `run:` step)."""
    return str(step.get("uses", "")).split("@", 1)[0]


def steps_using(job: Mapping[str, Any], action: str) -> list[dict[str, Any]]:
    """The job's steps that use `action` (owner/repo[/path], any ref)."""
    return [step for step in job.get("steps", []) if action_name(step) == action]


def pushes_image(step: Mapping[str, Any]) -> bool:
    """Whether a docker/build-push-action step can push: `push:` not false, or a registry output."""
    with_ = step.get("with", {})
    push = with_.get("push", False)
    return push not in (False, "false") or bool(
        PUSHING_OUTPUT.search(str(with_.get("outputs", "")))
    )


@dataclass
class StepRun:
    """What a `run:` step did: exit code, output, and the files it wrote for the runner."""

    returncode: int
    output: str
    outputs: dict[str, str]
    summary: str


def run_step(step: Mapping[str, Any], env: Mapping[str, str], workdir: Path) -> StepRun:
    """Runs a step's script as GitHub's default bash shell does (`bash -eo pipefail`)."""
    script = workdir / "step.sh"
    script.write_text(str(step["run"]))
    output_file, summary_file = workdir / "github_output", workdir / "step_summary"
    output_file.write_text("")
    summary_file.write_text("")
    full_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(workdir),
        "RUNNER_TEMP": str(workdir),
        "GITHUB_OUTPUT": str(output_file),
        "GITHUB_STEP_SUMMARY": str(summary_file),
        **env,
    }
    bash = shutil.which("bash") or "/bin/bash"
    done = subprocess.run(
        [bash, "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    outputs = dict(
        line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
    )
    return StepRun(done.returncode, done.stdout + done.stderr, outputs, summary_file.read_text())


def run_scripts() -> Iterator[tuple[str, str]]:
    """(where, script) for every `run:` step of every workflow."""
    for path in workflow_files():
        for job_id, job in load_workflow(path).get("jobs", {}).items():
            for index, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    name = step.get("name", f"step {index + 1}")
                    yield f"{path.name}:{job_id}:{name}", str(step["run"])
