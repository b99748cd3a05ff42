"""README.md says what the code does: its examples run, its tables list what exists."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from lucidserve.settings import Settings
from tests.support.processes import REPO, Service, wait_until

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```")[1]
    assert re.search(r"^make run\b", first_block, re.MULTILINE)
    assert re.search(r"^make test\b", first_block, re.MULTILINE)
    ci = (REPO / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "make test"


def test_every_curl_example_works_as_written(service: Service) -> None:
    text = section("Try it")
    commands = re.findall(r"^curl .*?(?<!\\)$", text, re.MULTILINE | re.DOTALL)
    assert len(commands) >= 7
    for command in commands:
        live = command.replace("http://127.0.0.1:8000", service.url)
        result = subprocess.run(
            ["bash", "-c", live.replace("curl -s", "curl -s --fail-with-body", 1)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert result.stdout.strip(), command
        if "/metrics" not in command:
            json.loads(result.stdout)


def test_configuration_table_lists_every_setting() -> None:
    documented = set(re.findall(r"^\| `LUCIDSERVE_([A-Z0-9_]+)` \|", README, re.MULTILINE))
    fields = {name.upper() for name in Settings.model_fields}
    assert documented == fields


def test_input_hash_example_matches_the_service(service: Service) -> None:
    snippet = section("Logs").split("```python")[1].split("```")[0]
    printed = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    assert printed in README
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

    service.client.post(
        "/v1/predict",
        json={
            "samples": [
                {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
            ]
        },
    )
    exported = {f.name for f in text_string_to_metric_families(service.client.get("/metrics").text)}
    table = section("Metrics and traces")
    for name in exported:
        assert f"`{name}" in table, f"{name} is exported but not documented"
