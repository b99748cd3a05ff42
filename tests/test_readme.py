"""README.md says what the code does: its commands and examples run, its table lists every setting.

The pages README links to for depth are checked in test_docs.py.
"""

from __future__ import annotations

import json
import re
import subprocess

from lucidserve.settings import Settings
from tests.support.processes import REPO, Service

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
        live = command.replace("http://127.0.0.1:9100", f"http://127.0.0.1:{service.metrics_port}")
        live = live.replace("http://127.0.0.1:8000", service.url)
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
