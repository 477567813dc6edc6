"""`smakom preview --watch`: the issue served on 127.0.0.1 and shown again after every save of
the issue, an image, a template or smakom.toml; a mistake is shown on the page, not a stop."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from tests.delivery.conftest import ISSUE, WAIT_SECONDS
from tests.processes import stop


def get(url: str, path: str, host: str | None = None) -> tuple[int, str, bytes]:
    """One GET over a real socket: status, content type and body."""
    address = url.removeprefix("http://").rstrip("/")
    connection = http.client.HTTPConnection(address, timeout=WAIT_SECONDS)
    try:
        connection.request("GET", path, headers={"Host": host or address})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def page(url: str, path: str = "/") -> str:
    status, _kind, body = get(url, path)
    assert status == 200
    return body.decode("utf-8")


def next_version(url: str, seen: str) -> str:
    """Wait until the served version is no longer `seen`, and return the new one."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        version = page(url, "/version")
        if version != seen:
            return version
        time.sleep(0.02)
    raise AssertionError(f"the preview was not rendered again within {WAIT_SECONDS} s")


def shown_once(url: str, path: str, wanted: Callable[[str], bool]) -> str:
    """The page at `path` once it shows what is `wanted`. A save is awaited by what the page
    shows, not by the first new version: an editor truncates a file before it writes it, and a
    rendering of the half-written file (an error) may come first."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        shown = page(url, path)
        if wanted(shown):
            return shown
        time.sleep(0.02)
    raise AssertionError(f"{path} did not show the save within {WAIT_SECONDS} s:\n{shown}")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.slow
def test_the_command_serves_the_issue_and_follows_a_save(newsletter: Path) -> None:
    """`smakom preview ISSUE --watch` prints its address; a saved heading is on the page."""
    process = subprocess.Popen(
        [sys.executable, "-m", "smakom_cli", "preview", ISSUE, "--watch"],
        cwd=newsletter,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "Rendered in" in first
        found = re.search(r"http://127\.0\.0\.1:\d+/", process.stdout.readline())
        assert found, "no address printed"
        url = found.group(0)
        shown = page(url)
        assert "SmåKom Nyhetsbrev Januari 2021" in shown
        assert "År 2021 – tillbaka till det ”normala”?" in page(url, "/mail")
        edit(newsletter / ISSUE, "# År 2021 –", "# Året 2021 –")
        shown_once(url, "/mail", lambda mail: "Året 2021 – tillbaka" in mail)
        assert "Rendered in" in process.stdout.readline()
    finally:
        stop(process)


def test_a_mistake_is_shown_on_the_page_and_the_next_save_renders_again(
    served: str, newsletter: Path
) -> None:
    """An unknown front-matter key is an error on the page over the last good mail; fixed, the
    page shows the mail again without the error."""
    edit(newsletter / ISSUE, "subject:", "subjekt: x\nsubject:")
    shown = shown_once(served, "/", lambda shown: "subjekt" in shown)
    assert 'class="error"' in shown
    assert "Peter Lindroth" in page(served, "/mail")  # the last good rendering stays
    edit(newsletter / ISSUE, "subjekt: x\n", "")
    shown_once(served, "/", lambda shown: 'class="error"' not in shown)


def test_a_change_to_smakom_toml_or_an_image_renders_again(served: str, newsletter: Path) -> None:
    """The settings and the images are watched too, and the images are served to the page."""
    edit(newsletter / "smakom.toml", "Charlotta", "Karlotta")
    shown_once(served, "/mail", lambda mail: "Karlotta" in mail)
    version = page(served, "/version")
    sources = re.findall(r'src="(/images/\d+)"', page(served, "/mail"))
    assert sources
    status, kind, body = get(served, sources[0])
    assert (status, kind) == (200, "image/png")
    assert body.startswith(b"\x89PNG")
    image = newsletter / "images" / "styrelsen.png"
    image.write_bytes(image.read_bytes() + b"\0")
    next_version(served, version)


def test_the_findings_of_the_check_are_on_the_page(served: str, newsletter: Path) -> None:
    """A subject longer than inboxes show is a warning of the check, listed on the page."""
    edit(newsletter / ISSUE, "subject: SmåKom", "subject: " + "Mycket lång ämnesrad " * 5)
    shown_once(served, "/", lambda shown: bool(re.search(r'<li class="warning">[^<]*78', shown)))


def test_only_this_computers_own_names_are_answered(served: str) -> None:
    """A request naming another host (DNS rebinding) is refused; unknown paths are 404."""
    assert get(served, "/", host="evil.example")[0] == 403
    assert get(served, "/mail", host="evil.example")[0] == 403
    assert get(served, "/../smakom.toml")[0] == 404
    assert get(served, "/images/99")[0] == 404


def test_watch_and_html_do_not_go_together(runner: CliRunner, newsletter: Path) -> None:
    """--watch serves the preview, --html writes it once: both is a usage error, exit 2."""
    result = runner.invoke(app, ["preview", ISSUE, "--watch", "--html", "x.html"])
    assert result.exit_code == 2, result.output
    assert not (newsletter / "x.html").exists()
