"""Reading a text file a person saved (an issue, `smakom.toml`): UTF-8 or refused whole.

Editors on Windows still offer "Unicode" (UTF-16), whose every other byte is NUL: read as
UTF-8 its English letters come through with NULs between them, which an error would print to
the terminal and a parser would misread.
"""

from __future__ import annotations

from pathlib import Path

from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _


def read_saved_text(path: Path, *, newline: str | None = None) -> str:
    """The text of `path` (a BOM dropped); a file that is not UTF-8 text is one error naming
    it. Other `OSError`s (no such file, a folder) are the caller's to word."""
    try:
        with path.open(encoding="utf-8-sig", newline=newline) as file:
            text = file.read()
    except UnicodeDecodeError:
        raise SmakomError(
            _("{path}: is not UTF-8 text; save it as UTF-8.").format(path=path)
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        raise SmakomError(
            _(
                "{path} line {number}: a NUL character, which no text has (a file saved "
                "as 'Unicode' or UTF-16 has one after every letter); save the file "
                "as UTF-8 text."
            ).format(path=path, number=text.count("\n", 0, nul) + 1)
        )
    return text
