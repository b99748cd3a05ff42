"""`make screenshots`: the model page of a real server with some traffic, as a small PNG.

    .venv/bin/python -m tests.support.screenshots [--out docs/images/model-page.png]

Trains the iris bundle in a temporary directory, serves it with two workers, sends 1,200 rows
like the training data and 400 with petal_length shifted by +1.5 cm (so the page shows an `ok`
and an `alert` feature), then has headless Chromium load `/`. The PNG is reduced to a 64-colour
palette (the page is flat colours and text) to keep it a few tens of kilobytes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from tests.support.browser import chromium, chromium_missing, full_page_screenshot
from tests.support.iris_traffic import as_samples, iris_rows
from tests.support.processes import BIN, REPO, start_service

DEFAULT_OUT = REPO / "docs" / "images" / "model-page.png"
WIDTH = 1100
COLOURS = 64


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    missing = chromium_missing()
    if missing:
        print(f"cannot take screenshots: {missing}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        bundle = Path(tmp) / "iris"
        subprocess.run(
            [str(BIN / "lucidserve"), "train", "--dataset", "iris", "--out", str(bundle)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        service = start_service(bundle, Path(tmp) / "service.log", workers=2)
        try:
            rows = [
                *as_samples(iris_rows(1200, seed=1)),
                *as_samples(iris_rows(400, seed=2, shift={"petal_length": 1.5})),
            ]
            for start in range(0, len(rows), 50):
                response = service.client.post(
                    "/v1/predict", json={"samples": rows[start : start + 50]}
                )
                response.raise_for_status()
            raw = Path(tmp) / "model-page.png"
            with chromium(width=WIDTH, height=900) as browser:
                browser.get(f"{service.url}/")
                full_page_screenshot(browser, raw)
        finally:
            service.stop()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(raw) as image:
            image.convert("RGB").quantize(COLOURS).save(args.out, optimize=True)
    print(f"{args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
