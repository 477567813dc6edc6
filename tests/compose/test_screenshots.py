"""The newsletter in a real browser (headless Chromium): 800 px and 375 px wide, light and
dark, the example and an issue with lists, a quote, a remote image and a long link.

Screenshots go to tmp_path, never into the repository. The "remote" image is served by a
small HTTP server on 127.0.0.1, so the test needs no network.
"""

from __future__ import annotations

import base64
import functools
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from tests.tools import require_program

WIDTHS = (800, 375)
SCHEMES = ("light", "dark")
LONG_LINK = (
    "https://www.regeringen.se/rattsliga-dokument/statens-offentliga-utredningar/2020/11/"
    "sou-202068-en-utvecklad-organisation-for-lokal-statlig-service-i-hela-landet-och-for-"
    "alla-som-bor-och-verkar-dar"
)
SECOND_ISSUE = """---
subject: SmåKom Nyhetsbrev Februari 2021
preheader: Vårmötet, remisser och en bild från fjällen.
---

# Vårmötet i Rättvik

Vårmötet blir **digitalt** i år. Det här behöver du *göra* före mötet:

1. Anmäl dig senast den 1 april.
2. Läs handlingarna.
3. Skicka frågor till charlotta@smakom.se.

## Program

- Ordföranden inleder
- Statlig service på landsbygden
- Frågestund

> "Ett digitalt möte är bättre än inget möte, men vi längtar efter att ses igen."
> — Peter Lindroth

![Fjällen i vinterskrud](REMOTE "Fjällen, en bild från en medlemskommun.")

Hela utredningen finns här: LONG_LINK
"""

FIND_PROBLEMS = """
const column = (img) => {
  const cell = img.closest('td');
  const style = getComputedStyle(cell);
  return cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
};
const images = [...document.images].map((img) => ({
  src: img.currentSrc, loaded: img.complete && img.naturalWidth > 0,
  width: img.getBoundingClientRect().width, column: column(img),
}));
const link = document.querySelector('td.section a');
return {
  scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
  images: images,
  sheet: getComputedStyle(document.querySelector('td.section')).backgroundColor,
  text: getComputedStyle(document.querySelector('td.section')).color,
  link: getComputedStyle(link).color,
  title: document.querySelector('h1').getBoundingClientRect().width,
  header: getComputedStyle(document.querySelector('td.header')).backgroundColor,
  preheader: document.querySelector('.preheader').getBoundingClientRect().height,
};
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


@pytest.fixture(scope="module")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A web server on 127.0.0.1 standing in for where a remote image is hosted."""
    folder = tmp_path_factory.mktemp("remote-images")
    shutil.copy(
        Path(__file__).resolve().parents[2] / "examples/images/utredningen.png", folder / "f.png"
    )
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/f.png"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium driven through chromedriver, with a fresh profile and no network
    services of its own."""
    chromium = require_program("chromium", "chromium")
    chromedriver = require_program("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def preview_html(runner: CliRunner, issue: str, target: Path) -> Path:
    """`smakom preview ISSUE --html FILE`, as a user opens it in a browser."""
    result = runner.invoke(app, ["preview", issue, "--html", str(target)])
    assert result.exit_code == 0, result.output
    return target


def look(driver: Any, page: Path, width: int, scheme: str, shot: Path) -> dict[str, Any]:
    """Open the page at this width and colour scheme, save a full-page screenshot, and
    measure what a reader would notice."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    driver.get(page.as_uri())
    deadline = time.monotonic() + 10
    while not driver.execute_script("return [...document.images].every(i => i.complete)"):
        assert time.monotonic() < deadline, "the images did not load within 10 s"
        time.sleep(0.05)
    found: dict[str, Any] = driver.execute_script(FIND_PROBLEMS)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    capture = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    shot.write_bytes(base64.b64decode(capture["data"]))
    return found


def brightness(css_color: str) -> float:
    """0 (black) to 255 (white) for a computed `rgb(…)` colour."""
    red, green, blue = (float(v) for v in css_color[css_color.index("(") + 1 : -1].split(",")[:3])
    return 0.299 * red + 0.587 * green + 0.114 * blue


@pytest.fixture
def pages(runner: CliRunner, newsletter: Path, image_server: str, tmp_path: Path) -> list[Path]:
    """The example and the second issue, as HTML files a browser opens."""
    second = SECOND_ISSUE.replace("REMOTE", image_server).replace("LONG_LINK", LONG_LINK)
    (newsletter / "issues" / "2021-02.md").write_text(second, encoding="utf-8")
    return [
        preview_html(runner, "issues/2021-01.md", tmp_path / "2021-01.html"),
        preview_html(runner, "issues/2021-02.md", tmp_path / "2021-02.html"),
    ]


def test_the_newsletter_fits_phone_and_desktop_in_light_and_dark(
    browser: Any, pages: list[Path], tmp_path: Path
) -> None:
    """At 800 and 375 px, light and dark, nothing is wider than the screen, every image loads
    and fits its column, the preheader stays hidden, and in dark mode text and links turn
    light on a dark sheet while the logo keeps its brand-coloured header."""
    headers = set()
    for page in pages:
        for width in WIDTHS:
            for scheme in SCHEMES:
                shot = tmp_path / f"{page.stem}-{width}-{scheme}.png"
                found = look(browser, page, width, scheme, shot)
                where = f"{page.stem} at {width} px, {scheme}"
                assert shot.stat().st_size > 20_000, where
                assert found["scrollWidth"] <= found["innerWidth"], where
                assert found["images"], where
                for image in found["images"]:
                    assert image["loaded"], f"{where}: {image['src']} did not load"
                    assert 0 < image["width"] <= image["column"] + 0.5, f"{where}: {image}"
                assert found["title"] <= min(width, 600), where
                assert found["preheader"] == 0, where
                headers.add(found["header"])
                sheet, text, link = (brightness(found[k]) for k in ("sheet", "text", "link"))
                if scheme == "dark":
                    assert sheet < 60 and text > 180 and link > 140, f"{where}: {found}"
                else:
                    assert sheet > 240 and text < 80 and link < 120, f"{where}: {found}"
    assert headers == {"rgb(0, 90, 122)"}  # [brand] primary_color, #005a7a, in both schemes


def test_a_remote_image_is_drawn_at_the_column_width_on_a_phone(
    browser: Any, pages: list[Path], tmp_path: Path
) -> None:
    """On a 375 px screen a photo fills the column (16 px margins), not more."""
    found = look(browser, pages[1], 375, "light", tmp_path / "phone.png")
    remote = [image for image in found["images"] if image["src"].startswith("http://127.0.0.1")]
    assert len(remote) == 1
    assert remote[0]["column"] == 375 - 2 * 16
    assert remote[0]["width"] == remote[0]["column"]
