"""docs/ says what the code does: its examples run, its tables list what exists, its links land."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO, Service, wait_until

OBSERVABILITY = (REPO / "docs" / "observability.md").read_text()
# Every Markdown page a reader reaches from README.md, README.md included.
PAGES = sorted(
    [
        REPO / "README.md",
        *(REPO / "docs").glob("*.md"),
        REPO / "loadtest" / "README.md",
        REPO / "deploy" / "README.md",
        REPO / "deploy" / "compose" / "README.md",
    ]
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def section(text: str, title: str) -> str:
    """A `## title` section of a page, up to the next `## ` heading."""
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, no punctuation, '-' for spaces."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_input_hash_example_matches_the_service(service: Service) -> None:
    snippet = section(OBSERVABILITY, "Logs").split("```python")[1].split("```")[0]
    printed = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    assert printed in OBSERVABILITY
    sample = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    request_id = service.client.post("/v1/predict", json={"samples": [sample]}).json()["request_id"]

    def logged_hash() -> str | None:
        for line in service.log_lines():
            record = json.loads(line)
            if record.get("request_id") == request_id and record.get("event") == "prediction":
                return str(record["input_hash"])
        return None

    assert wait_until(logged_hash, timeout=10, what="the prediction line") == printed


def test_metric_table_names_every_exported_metric(service: Service) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    sample = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    service.client.post("/v1/predict", json={"samples": [sample]})
    exported = {f.name for f in text_string_to_metric_families(service.metrics())}
    table = section(OBSERVABILITY, "Metrics")
    for name in exported:
        assert f"`{name}" in table, f"{name} is exported but not documented"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_links_between_files_are_relative_and_land(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        assert not target.startswith("/"), f"{target}: links between files are relative"
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{target} from {page.relative_to(REPO)} names no file"
        if anchor:
            assert anchor in anchors(linked), f"{target}: no such heading"
