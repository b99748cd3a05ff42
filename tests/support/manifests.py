"""The Kubernetes manifests as a cluster receives them (kustomize output), and lookups into them."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import REPO

K8S = REPO / "deploy" / "k8s"
KUSTOMIZATIONS = {
    "base": K8S / "base",
    "dev": K8S / "overlays" / "dev",
    "prod": K8S / "overlays" / "prod",
}
APP_CONTAINER = "lucidserve"

Doc = dict[str, Any]


def kustomize_command() -> list[str] | None:
    """`kubectl kustomize`, or a standalone `kustomize build`; None when neither is installed."""
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    return None


def render_text(path: Path) -> str:
    command = kustomize_command()
    if command is None:
        raise FileNotFoundError("neither kubectl nor kustomize is installed")
    result = subprocess.run(
        [*command, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"kustomize failed on {path}:\n{result.stderr}")
    return result.stdout


@dataclass(frozen=True)
class Rendered:
    """One kustomization's output, parsed once."""

    name: str
    text: str
    docs: list[Doc]

    @classmethod
    def of(cls, name: str, text: str) -> Rendered:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return cls(name, text, [doc for doc in yaml.load_all(text, Loader=loader) if doc])

    def all(self, kind: str) -> list[Doc]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Doc:
        found = [doc for doc in self.all(kind) if name in (None, doc["metadata"]["name"])]
        assert len(found) == 1, f"{self.name}: expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def maybe(self, kind: str) -> Doc | None:
        found = self.all(kind)
        return found[0] if found else None

    @property
    def deployment(self) -> Doc:
        return self.one("Deployment", "lucidserve")

    @property
    def pod(self) -> Doc:
        return dict(self.deployment["spec"]["template"]["spec"])

    @property
    def pod_labels(self) -> dict[str, str]:
        return dict(self.deployment["spec"]["template"]["metadata"]["labels"])

    @property
    def container(self) -> Doc:
        return next(c for c in self.pod["containers"] if c["name"] == APP_CONTAINER)

    def settings_env(self) -> dict[str, str]:
        """The ConfigMaps the app container takes whole (`envFrom`), merged."""
        values: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref:
                values.update(self.one("ConfigMap", ref["name"])["data"])
        return values

    def literal_env(self) -> dict[str, str]:
        """The app container's `env` entries that have a literal value."""
        return {e["name"]: e["value"] for e in self.container.get("env", []) if "value" in e}

    def env_entry(self, name: str) -> Doc:
        return next(e for e in self.container.get("env", []) if e["name"] == name)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector selects an object with these labels."""
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())
