"""`preview --watch` in a real headless Chromium: the page reloads itself after a save and keeps
its place in the mail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.conftest import ISSUE, WAIT_SECONDS
from tests.delivery.test_watch import edit
from tests.tools import require_program


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Debian's chromium through chromedriver: headless, offline, a fresh profile."""
    driver_path = require_program("chromedriver", "chromium-driver")
    chromium = require_program("chromium", "chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Selenium must use the installed browser and driver, never download one.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=800,600",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.slow
def test_the_page_reloads_itself_after_a_save_and_keeps_its_place(
    browser: Any, served: str, newsletter: Path
) -> None:
    """Nobody presses reload: a saved heading appears in the open page, scrolled as it was."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served)
    frame_text = "return document.getElementById('mail').contentDocument.body.innerText"
    wait = WebDriverWait(browser, WAIT_SECONDS)
    wait.until(lambda d: "Peter Lindroth" in d.execute_script(frame_text))
    browser.execute_script("document.getElementById('mail').contentWindow.scrollTo(0, 400)")
    edit(newsletter / ISSUE, "# År 2021 –", "# Året 2021 –")
    wait.until(lambda d: "Året 2021 – tillbaka" in d.execute_script(frame_text))
    scrolled = "return document.getElementById('mail').contentWindow.scrollY"
    wait.until(lambda d: d.execute_script(scrolled) == 400)
