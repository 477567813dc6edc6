"""An issue file: front matter between `---` lines, then the Markdown body.

The front matter is `key: value` lines, and a value is the text after the colon, to the end
of the line, as it is written: `subject: Vårmötet #2 och mer`, `subject: SmåKom informerar:
Vårmötet blir digitalt` and `subject: [TEST] Hej` mean what they say. (It used to be read
as YAML, which cut the first at `#` and refused the others.) Quotes around a whole value are
taken off, so a value written for YAML keeps reading the same. A line starting with `#` is a
comment.

Front matter errors name the file and the line, because the person fixing them edits the
file in a text editor and needs to know where to look.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from smakom_cli.compose.images import IMAGE_MODES
from smakom_cli.config import is_control
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.textfiles import read_saved_text

REQUIRED_KEYS = ("subject",)
OPTIONAL_KEYS = ("preheader", "title", "date", "banner", "images")


@dataclass(frozen=True)
class Issue:
    """One newsletter issue as written by the editor."""

    path: Path
    subject: str
    preheader: str
    title: str
    date: dt.date | None
    banner: str | None
    body: str
    body_line: int
    images: str | None = None
    """`embed` or `link`: overrides `[newsletter] images` for this issue."""

    @property
    def slug(self) -> str:
        """The stable name of the issue: its file name without `.md` (`2021-01`)."""
        return self.path.stem


def load_issue(path: Path) -> Issue:
    """Read an issue file and check its front matter."""
    try:
        # Line ends as they are: a CR inside a front matter line is refused, not a new line.
        text = read_saved_text(path, newline="")
    except FileNotFoundError:
        raise SmakomError(_("{path}: no such issue file.").format(path=path)) from None
    except IsADirectoryError:
        raise SmakomError(_("{path}: is a folder, not an issue file.").format(path=path)) from None
    front, body, body_line = _split_front_matter(path, text)
    meta = _parse_front_matter(path, front)
    subject = _text(meta, "subject")
    return Issue(
        path=path,
        subject=subject,
        preheader=_text(meta, "preheader"),
        title=_text(meta, "title") or subject,
        date=_date(path, meta),
        banner=_text(meta, "banner") or None,
        body=body,
        body_line=body_line,
        images=_images(path, meta),
    )


def _split_front_matter(path: Path, text: str) -> tuple[str, str, int]:
    # Lines end at "\n" only, as an editor counts them: a stray CR, U+2028 or the like stays
    # inside its line (and is refused there), never starting a line of its own.
    lines = list(io.StringIO(text, newline="\n"))
    if not lines or lines[0].strip() != "---":
        raise SmakomError(
            _(
                "{path} line 1: an issue starts with front matter: a line '---', then "
                "'subject: ...', then another '---'."
            ).format(path=path)
        )
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == "---":
            body = "".join(lines[number:]).replace("\r\n", "\n").replace("\r", "\n")
            return "".join(lines[1 : number - 1]), body, number + 1
    raise SmakomError(
        _("{path} line 1: the front matter has no closing '---' line.").format(path=path)
    )


_KEY_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(.*)")
_EXAMPLE = "subject: Nyhetsbrev Januari 2021"


def _parse_front_matter(path: Path, front: str) -> dict[str, tuple[str, int]]:
    """Map each key to its text and the line it is on in the file."""
    known = REQUIRED_KEYS + OPTIONAL_KEYS
    result: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(io.StringIO(front, newline="\n"), start=2):
        line = raw.removesuffix("\n").removesuffix("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path} line {number}"
        if line[0] in " \t":
            raise SmakomError(
                _(
                    "{where}: each value is on the same line as its key, like '{example}'; "
                    "join this line to the one above."
                ).format(where=where, example=_EXAMPLE)
            )
        match = _KEY_LINE.fullmatch(line)
        if match is None:
            raise SmakomError(
                _("{where}: a front matter line is 'key: value', like '{example}'.").format(
                    where=where, example=_EXAMPLE
                )
            )
        key, value = match.group(1), match.group(2).strip(" \t")
        if key not in known:
            raise SmakomError(
                _("{where}: unknown key '{key}' (known keys: {join}).").format(
                    where=where, key=key, join=", ".join(known)
                )
            )
        if key in result:
            raise SmakomError(
                _("{where}: '{key}' is given twice (first on line {result}).").format(
                    where=where, key=key, result=result[key][1]
                )
            )
        value = _unquoted(value)
        control = next((c for c in value if is_control(c) and c != "\t"), None)
        if control is not None:
            raise SmakomError(
                _(
                    "{where}: '{key}' must be one line of text, but has the control "
                    "character {control!r} in it; remove it."
                ).format(where=where, key=key, control=control)
            )
        result[key] = (value, number)
    for key in REQUIRED_KEYS:
        if not result.get(key, ("", 0))[0]:
            raise SmakomError(
                _("{path}: the front matter has no '{key}:' line; add one.").format(
                    path=path, key=key
                )
            )
    return result


def _unquoted(value: str) -> str:
    """The value without quotes around the whole of it, read as YAML read it: `'Hej'`
    (`''` for a quote inside) or `"Hej"` (with backslash escapes, as in JSON)."""
    if len(value) < 2 or value[0] != value[-1] or value[0] not in "\"'":
        return value
    if value[0] == "'":
        return value[1:-1].replace("''", "'")
    try:
        text = json.loads(value)
    except ValueError:
        return value[1:-1]
    return text if isinstance(text, str) else value[1:-1]


def _text(meta: dict[str, tuple[str, int]], key: str) -> str:
    return meta.get(key, ("", 0))[0]


def _date(path: Path, meta: dict[str, tuple[str, int]]) -> dt.date | None:
    value, line = meta.get("date", ("", 0))
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise SmakomError(
            _("{path} line {line}: 'date' must be a date like 2021-01-15, not {value!r}.").format(
                path=path, line=line, value=value
            )
        ) from None


def _images(path: Path, meta: dict[str, tuple[str, int]]) -> str | None:
    value, line = meta.get("images", ("", 0))
    if not value:
        return None
    if value not in IMAGE_MODES:
        raise SmakomError(
            _(
                "{path} line {line}: 'images' must be embed (images inside every "
                "message) or link (images from the web version), not {value!r}."
            ).format(path=path, line=line, value=value)
        )
    return value
