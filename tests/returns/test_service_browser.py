"""The unsubscribe page clicked in a real headless Chromium, with JavaScript switched off."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from smakom_cli.audience.unsubscribe_links import make_token
from tests.browser import chromium
from tests.service_server import SECRET, RunningService, running_service
from tests.tools import require_program

WIDTH, HEIGHT = 800, 600


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A headless Chromium with JavaScript switched off: the page must work without it."""
    driver_path = require_program("chromedriver", "chromium-driver")
    binary = require_program("chromium", "chromium")
    with chromium(
        driver_path,
        binary,
        tmp_path / "chromium-profile",
        monkeypatch,
        size=(WIDTH, HEIGHT),
        javascript=False,
    ) as driver:
        yield driver


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    with running_service(tmp_path / "service.sqlite3") as running:
        yield running


def pixels(png: bytes) -> tuple[int, int, Counter[tuple[int, int, int]]]:
    """Width, height and how often each RGB colour occurs, from an 8-bit RGB(A) PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    data = b""
    while offset < len(png):
        length, kind = struct.unpack(">I4s", png[offset : offset + 8])
        body = png[offset + 8 : offset + 8 + length]
        if kind == b"IDAT":
            data += body
        else:
            chunks.setdefault(kind, body)
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour in (2, 6)
    step = 4 if colour == 6 else 3
    raw = zlib.decompress(data)
    stride = width * step
    previous = bytearray(stride)
    counts: Counter[tuple[int, int, int]] = Counter()
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - step] if x >= step else 0
            b = previous[x]
            c = previous[x - step] if x >= step else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        counts.update((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, step * 4))
        previous = line
    return width, height, counts


def wait_for_heading(browser: object, text: str) -> None:
    """Wait until the page after a click has loaded, with this heading: straight after the
    click, the heading found may still be the old page's, gone a moment later."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda driver: driver.find_element(By.TAG_NAME, "h1").text == text,
        f"the page did not show the heading {text!r}",
    )


def test_the_button_unsubscribes_and_undo_works_without_javascript(
    browser: object, service: RunningService, tmp_path: Path
) -> None:
    """Open the link, press the button: "Du är avregistrerad" in the list's colours; then Ångra."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    browser.get("data:text/html,<title>no</title><script>document.title='js'</script>")
    assert browser.title == "no", "JavaScript should be switched off in this browser"

    browser.get(service.link(make_token(SECRET.encode(), "anna.aberg@example.com")))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Vill du avregistrera dig?"
    assert service.events() == []

    browser.find_element(By.XPATH, "//button[text()='Avregistrera mig']").click()
    wait_for_heading(browser, "Du är avregistrerad")
    screenshot = tmp_path / "avregistrerad.png"
    assert browser.save_screenshot(str(screenshot))
    width, height, counts = pixels(screenshot.read_bytes())
    # The window's height includes the (invisible) browser frame; the page gets the rest.
    assert width == WIDTH and 300 < height <= HEIGHT
    # The page's background: a large share, not the largest (how much of the window the
    # white card covers depends on how much height Chromium leaves the page).
    assert counts[(0xEE, 0xF2, 0xF4)] > sum(counts.values()) // 5
    assert counts[(0xFF, 0xFF, 0xFF)] > 100  # the white card
    assert counts[(0x00, 0x5A, 0x7A)] > 50  # the heading and the card's top in the brand colour

    browser.find_element(By.XPATH, "//button[text()='Ångra']").click()
    wait_for_heading(browser, "Du prenumererar igen")
    # Back and reload are plain GETs (POST-redirect-GET): no "confirm form resubmission".
    browser.back()
    wait_for_heading(browser, "Du prenumererar igen")
    browser.refresh()
    wait_for_heading(browser, "Du prenumererar igen")
    assert [(e["action"], e["source"]) for e in service.events()] == [
        ("unsubscribed", "web"),
        ("resubscribed", "web"),
    ]
