"""Images embedded in every message or linked from the web version, and their drawn size."""

from __future__ import annotations

import re
import struct
import zlib
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.compose.images import display_size, pixel_size

ISSUE = "issues/2021-01.md"
WEB = "https://www.smakom.se/nyhetsbrev"


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def dry_run_message(runner: CliRunner, outbox: Path) -> bytes:
    result = runner.invoke(app, ["send", ISSUE, "--dry-run", "--outbox", str(outbox)])
    assert result.exit_code == 0, result.output
    return sorted(outbox.glob("*.eml"))[0].read_bytes()


def html_of(raw: bytes) -> tuple[str, list[str]]:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    body = message.get_body(("html",))
    assert body is not None
    return body.get_content(), [part.get_content_type() for part in message.walk()]


def test_linked_images_come_from_where_the_archive_puts_them(
    runner: CliRunner, newsletter: Path, tmp_path: Path
) -> None:
    """With `images: link` the message carries no image parts, and each image's address is
    `web_base_url` plus the very path `smakom archive` writes the file to."""
    replace_in(newsletter / ISSUE, "date: 2021-01-05\n", "date: 2021-01-05\nimages: link\n")
    before = runner.invoke(app, ["check", ISSUE])
    assert "6 of them are not in the web version (site/) yet: run `smakom archive`" in (
        before.output
    )
    assert runner.invoke(app, ["archive"]).exit_code == 0
    assert "not in the web version" not in runner.invoke(app, ["check", ISSUE]).output
    raw = dry_run_message(runner, tmp_path / "out")
    html, kinds = html_of(raw)
    assert "image/png" not in kinds and "multipart/related" not in kinds
    sources = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert sources and all(src.startswith(f"{WEB}/images/") for src in sources)
    assert len(raw) < 40_000
    result = runner.invoke(app, ["archive", "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    for src in sources:
        assert (tmp_path / "site" / src.removeprefix(f"{WEB}/")).is_file(), src


def test_the_folder_can_link_images_and_an_issue_embed_them(
    runner: CliRunner, newsletter: Path, tmp_path: Path
) -> None:
    """`[newsletter] images = "link"` links every issue's images; an issue's `images: embed`
    puts them back inside its messages."""
    replace_in(newsletter / "smakom.toml", 'images = "embed"', 'images = "link"')
    _, kinds = html_of(dry_run_message(runner, tmp_path / "linked"))
    assert "image/png" not in kinds
    result = runner.invoke(app, ["preview", ISSUE])
    assert re.search(r"Message size: \d+\.\d KB \(images linked\)", result.output), result.output
    replace_in(newsletter / ISSUE, "date: 2021-01-05\n", "date: 2021-01-05\nimages: embed\n")
    _, kinds = html_of(dry_run_message(runner, tmp_path / "embedded"))
    assert kinds.count("image/png") == 6


def test_preview_html_shows_linked_images_from_disk(runner: CliRunner, newsletter: Path) -> None:
    """Before the web version is uploaded, the previewed HTML shows linked images from disk."""
    replace_in(newsletter / "smakom.toml", 'images = "embed"', 'images = "link"')
    result = runner.invoke(app, ["preview", ISSUE, "--html", "out.html"])
    assert result.exit_code == 0, result.output
    html = (newsletter / "out.html").read_text(encoding="utf-8")
    assert re.search(r'src="file://[^"]+styrelsen\.png"', html)
    assert f'src="{WEB}/images/' not in html


NO_WEB_ADDRESS = ("smakom.toml", 'web_base_url = "https://www.smakom.se/nyhetsbrev"', "")
ISSUE_LINKS = (ISSUE, "date: 2021-01-05\n", "date: 2021-01-05\nimages: link\n")
BAD_SETTINGS = {
    "unknown-mode": (
        [("smakom.toml", 'images = "embed"', 'images = "bilagor"')],
        "'newsletter.images' must be one of embed, link, not 'bilagor'",
    ),
    "link-without-web-address": (
        [("smakom.toml", 'images = "embed"', 'images = "link"'), NO_WEB_ADDRESS],
        "'newsletter.images' = \"link\" needs 'newsletter.web_base_url'",
    ),
    "unknown-mode-in-the-issue": (
        [(ISSUE, "date: 2021-01-05\n", "date: 2021-01-05\nimages: bifoga\n")],
        r"2021-01\.md line 6: 'images' must be embed .* or link .*, not 'bifoga'",
    ),
    "issue-links-without-web-address": (
        [ISSUE_LINKS, NO_WEB_ADDRESS],
        r"2021-01\.md: 'images: link' needs \[newsletter\] web_base_url in smakom\.toml",
    ),
}


@pytest.mark.parametrize("case", BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_a_wrong_images_setting_is_one_clear_line(
    runner: CliRunner, newsletter: Path, case: tuple[list[tuple[str, str, str]], str]
) -> None:
    """A wrong `images` value, or linking without a web address, names the file and key."""
    edits, expected = case
    for file, old, new in edits:
        replace_in(newsletter / file, old, new)
    result = runner.invoke(app, ["check", ISSUE])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ")
    assert re.search(expected, result.output), result.output


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def test_image_sizes_are_read_from_png_gif_and_jpeg(tmp_path: Path) -> None:
    """The drawn width never exceeds the column; a smaller image keeps its own size."""
    (tmp_path / "a.png").write_bytes(png(1200, 800))
    (tmp_path / "b.gif").write_bytes(b"GIF89a" + struct.pack("<HH", 300, 100) + b"\0" * 8)
    sof = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 450, 600) + b"\0" * 12
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8" + b"\xff\xe0\x00\x04\0\0" + sof)
    assert pixel_size(tmp_path / "a.png") == (1200, 800)
    assert display_size(tmp_path / "a.png", 552) == (552, 368)
    assert display_size(tmp_path / "b.gif", 552) == (300, 100)
    assert pixel_size(tmp_path / "c.jpg") == (600, 450)
    assert display_size(tmp_path / "missing.png", 552) == (552, None)


@given(st.binary(max_size=300))
def test_any_image_file_gives_a_size_or_none(data: bytes) -> None:
    """Whatever bytes an image file holds, reading its size never fails."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        for prefix in (b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8"):
            path = Path(folder) / "x.img"
            path.write_bytes(prefix + data)
            size = pixel_size(path)
            assert size is None or all(isinstance(n, int) and n >= 0 for n in size)
            width, height = display_size(path, 552)
            assert 0 < width <= 552 and (height is None or height >= 1)


@given(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
        st.sampled_from(["embed", "link", "Embed", " link"]),
    ),
    st.one_of(st.integers(-5, 100), st.floats(-5, 100, allow_nan=False)),
)
def test_the_images_and_size_keys_are_checked(mode: str, limit: float) -> None:
    """Any `images` value and provider limit in smakom.toml is taken as written or refused
    in one sentence naming the key; never a traceback."""
    import json
    import tempfile

    from smakom_cli.config import load_config
    from smakom_cli.errors import SmakomError

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "smakom.toml"
        quoted = json.dumps(mode, ensure_ascii=False)
        path.write_text(
            f'[newsletter]\nweb_base_url = "{WEB}"\nimages = {quoted}\n'
            f"[smtp]\nmax_message_mb = {limit!r}\n",
            encoding="utf-8",
        )
        if mode in ("embed", "link") and limit > 0:
            config = load_config(path)
            assert (config.newsletter.images, config.smtp.max_message_mb) == (mode, limit)
        else:
            with pytest.raises(SmakomError, match=r"'(newsletter\.images|smtp\.max_message_mb)'"):
                load_config(path)
