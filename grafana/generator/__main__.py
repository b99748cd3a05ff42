"""`python -m grafana.generator [--check]`: write (or check) every generated monitoring file."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard

from .kubernetes import dashboard_configmaps, prometheus_rule
from .model import model_dashboard
from .objectives import load_objectives
from .service import service_dashboard
from .slo import slo_dashboard

REPO = Path(__file__).resolve().parents[2]
RULES = Path("deploy/prometheus/rules.yml")
DASHBOARDS = Path("grafana/dashboards")
K8S_BASE = Path("deploy/k8s/base")


def generated_files(repo: Path = REPO) -> dict[Path, str]:
    """Every generated file, as a path relative to the repository and its exact text."""
    rules = yaml.safe_load((repo / RULES).read_text())
    objectives = load_objectives(rules)
    dashboards = {
        "lucidserve-service": service_dashboard(objectives),
        "lucidserve-model": model_dashboard(objectives),
        "lucidserve-slo": slo_dashboard(objectives),
    }
    texts = {name: dashboard_json(board) for name, board in dashboards.items()}
    files = {DASHBOARDS / f"{name}.json": text for name, text in texts.items()}
    files[K8S_BASE / "grafana-dashboards.yaml"] = dashboard_configmaps(texts)
    files[K8S_BASE / "prometheusrule.yaml"] = prometheus_rule(rules)
    return files


def dashboard_json(board: dashboard.Dashboard) -> str:
    """Stable JSON text: sorted keys, two-space indent, final newline."""
    return json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.generator", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; fail if a committed file is stale"
    )
    args = parser.parse_args(argv)
    stale = []
    for relative, text in generated_files().items():
        path = REPO / relative
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        stale.append(relative)
        if args.check:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"{relative} (committed)",
                f"{relative} (generated)",
                n=1,
            )
            sys.stdout.writelines(list(diff)[:60])
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {relative}")
    if args.check and stale:
        print(f"stale generated files (run `make dashboards`): {', '.join(map(str, stale))}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
