"""Debian's Chromium through chromedriver for the tests that look at a page as a person does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@contextmanager
def chromium(
    driver_path: str,
    binary: str,
    profile: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    size: tuple[int, int] = (800, 600),
    javascript: bool = True,
    page_load_seconds: float = 20,
) -> Iterator[Any]:
    """Headless, offline, a fresh profile. The caller finds the programs with
    `tests.tools.require_program`, so the development page's table names its test file."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Selenium must use the installed browser and driver, never download one.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={size[0]},{size[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(page_load_seconds)
    try:
        yield driver
    finally:
        driver.quit()
