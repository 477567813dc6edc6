"""Images an issue shows: where they are published, and how big they are drawn.

The web archive copies each local image to `images/<digest>-<name>`, and a mail that links
its images (`images = "link"`) points at that same file under `web_base_url`; both take the
name from `archive_path`, so they cannot disagree.
"""

from __future__ import annotations

import hashlib
import re
import struct
import typing
from pathlib import Path
from typing import Literal

# How a mail carries local images: inside it, or as links to the web archive's copies.
ImagePlacement = Literal["embed", "link"]
IMAGE_MODES: tuple[ImagePlacement, ...] = typing.get_args(ImagePlacement)
COLUMN_WIDTH = 552  # the 600 px layout less 24 px padding on each side


def _digest_and_name(folder: Path, local: Path) -> tuple[str, str]:
    """A short digest of the path inside the newsletter folder (so the name stays the same
    when the folder is moved or archived on another computer) and a safe file name."""
    try:
        key = local.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        key = local.resolve().as_posix()
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:8]
    return digest, re.sub(r"[^A-Za-z0-9._-]", "_", local.name)


def archive_path(folder: Path, local: Path) -> str:
    """Where `smakom archive` puts a local image, relative to the site: `images/…`."""
    digest, name = _digest_and_name(folder, local)
    return f"images/{digest}-{name}"


def content_id(folder: Path, local: Path) -> str:
    """The Content-ID of a local image embedded in the mail."""
    digest, name = _digest_and_name(folder, local)
    return f"{digest}.{name}@smakom"


def linked_url(web_base_url: str, folder: Path, local: Path) -> str:
    """The address a mail links a local image from, once the archive is published."""
    return f"{web_base_url.rstrip('/')}/{archive_path(folder, local)}"


def pixel_size(path: Path) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG file, from its header; None if unknown."""
    try:
        with path.open("rb") as file:
            head = file.read(64 * 1024)
    except OSError:
        return None
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return width, height
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(head)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The frame size from the first SOF marker (baseline, progressive, …)."""
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        length = struct.unpack(">H", data[index + 2 : index + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return width, height
        index += 2 + length
    return None


def display_size(path: Path | None, max_width: int) -> tuple[int, int | None]:
    """The pixel width (and height, when known) to draw an image at in a column.

    Outlook for Windows draws an image at its `width` attribute and ignores `max-width`,
    so the attribute must never be wider than the column; a smaller image keeps its size.
    """
    size = pixel_size(path) if path else None
    if not size or size[0] <= 0:
        return max_width, None
    width, height = size
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))
