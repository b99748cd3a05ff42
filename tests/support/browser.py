"""Headless Chromium for page tests and screenshots: Debian's chromium, driven through Selenium.

Selenium is given both binaries explicitly (Debian's `chromium` and `chromium-driver`, listed in
scripts/system-packages.txt), so Selenium Manager never looks for, or downloads, a browser or a
driver. The flags keep the browser off the network except for the page under test.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
WAIT_SECONDS = 30.0


def chromium_missing() -> str | None:
    """Why the browser cannot run here (a reason to skip), or None."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        return f"not installed: {', '.join(missing)} (Debian chromium, chromium-driver)"
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 1000) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile, quit on exit."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(
            options=options, service=DriverService(executable_path=str(CHROMEDRIVER))
        )
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], object], what: str) -> object:
    """Poll `condition` in the page until it returns something truthy (bounded)."""
    return WebDriverWait(driver, WAIT_SECONDS).until(condition, f"timed out waiting for {what}")


def full_page_screenshot(driver: WebDriver, path: Path) -> Path:
    """Save a PNG of the whole document: the viewport is set to the document's size first."""
    size = driver.execute_script(
        "const e = document.documentElement; return [e.scrollWidth, e.scrollHeight];"
    )
    driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Emulation.setDeviceMetricsOverride",
        {"width": int(size[0]), "height": int(size[1]), "deviceScaleFactor": 1, "mobile": False},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path
