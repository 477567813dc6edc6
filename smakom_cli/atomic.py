"""Writing files: replaced whole, and named in every error.

A replaced file's data goes to a temporary file beside the target (`.<name>.<random>.tmp`), is
flushed to disk, then renamed over the target; the folder is flushed too, so that the rename
survives a power cut. A reader, or a crash, sees the old file or the new one, never half.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE = 0o600
"""A new file only its owner may read and write."""


@contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Name `path` in an error raised while writing it: a failed write (a full disk, a limit
    on file sizes) carries no file name of its own, so the user would not know which file."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def replace_file(path: Path, data: bytes, *, new_mode: int = 0o666) -> None:
    """Put `data` in place of `path` in one step, keeping the old file's permissions.

    A first file gets `new_mode` less the umask; on Windows a mode can only set or clear
    read-only, which is all it has.
    """
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, new_mode)
    try:
        with writing(path), os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            temporary.chmod(mode)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # The rename itself is only durable once the folder is flushed; Windows cannot open a
    # folder for that (and its NTFS rename is journaled).
    if os.name != "nt":
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def remove_temporary_files(path: Path) -> None:
    """Delete what a writer of `path` killed mid-write left behind; only safe while no other
    writer of `path` is at work (under its lock)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
