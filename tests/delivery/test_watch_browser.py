"""`preview --watch` in a real headless Chromium: the page reloads itself after a save and keeps
its place in the mail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from tests.delivery.conftest import ISSUE, WAIT_SECONDS
from tests.delivery.test_watch import edit
from tests.tools import require_program


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A headless Chromium with JavaScript, which the page needs to reload itself."""
    driver_path = require_program("chromedriver", "chromium-driver")
    binary = require_program("chromium", "chromium")
    with chromium(
        driver_path,
        binary,
        tmp_path / "chromium-profile",
        monkeypatch,
        page_load_seconds=WAIT_SECONDS,
    ) as driver:
        yield driver


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
