"""An issue file: YAML front matter between `---` lines, then the Markdown body.

Front matter errors name the file and the line, because the person fixing them edits the
file in a text editor and needs to know where to look.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml

from smakom_cli.compose.images import IMAGE_MODES
from smakom_cli.errors import SmakomError

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
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SmakomError(f"{path}: no such issue file.") from None
    except IsADirectoryError:
        raise SmakomError(f"{path}: is a folder, not an issue file.") from None
    except UnicodeDecodeError:
        raise SmakomError(f"{path}: is not UTF-8 text; save it as UTF-8.") from None
    front, body, body_line = _split_front_matter(path, text)
    meta = _parse_front_matter(path, front)
    subject = _text(path, meta, "subject")
    if "\n" in subject or "\r" in subject:
        raise SmakomError(f"{path}: the subject must be a single line.")
    return Issue(
        path=path,
        subject=subject,
        preheader=_text(path, meta, "preheader"),
        title=_text(path, meta, "title") or subject,
        date=_date(path, meta),
        banner=_text(path, meta, "banner") or None,
        body=body,
        body_line=body_line,
        images=_images(path, meta),
    )


def _split_front_matter(path: Path, text: str) -> tuple[str, str, int]:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise SmakomError(
            f"{path} line 1: an issue starts with front matter: a line '---', "
            "then 'subject: ...', then another '---'."
        )
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == "---":
            return "".join(lines[1 : number - 1]), "".join(lines[number:]), number + 1
    raise SmakomError(f"{path} line 1: the front matter has no closing '---' line.")


def _parse_front_matter(path: Path, front: str) -> dict[str, tuple[object, int]]:
    """Map each key to its value and the line it is on in the file."""
    try:
        node = yaml.compose(front, Loader=yaml.SafeLoader)
        data = yaml.safe_load(front)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 2}" if mark else ""
        raise SmakomError(
            f"{path}{line}: the front matter is not valid YAML ({exc.problem})."
        ) from None
    except yaml.YAMLError as exc:
        raise SmakomError(f"{path}: the front matter is not valid YAML ({exc}).") from None
    except RecursionError:
        raise SmakomError(f"{path}: the front matter is nested too deeply to read.") from None
    except Exception as exc:
        # PyYAML builds dates and tagged values itself and lets whatever its code hits
        # through: `date: 2021-02-30` is a ValueError, a bare `!!float` an IndexError.
        raise SmakomError(
            f"{path}: the front matter has a value YAML cannot read ({exc})."
        ) from None
    if data is None:
        data, node = {}, None
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode | None):
        raise SmakomError(f"{path} line 2: the front matter must be 'key: value' lines.")
    lines = {}
    for key_node, _ in node.value if node else []:
        lines[key_node.value] = key_node.start_mark.line + 2
    result: dict[str, tuple[object, int]] = {}
    for key, value in data.items():
        line = lines.get(str(key), 2)
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            known = ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS)
            raise SmakomError(f"{path} line {line}: unknown key '{key}' (known keys: {known}).")
        result[key] = (value, line)
    for key in REQUIRED_KEYS:
        if key not in result or result[key][0] in (None, ""):
            raise SmakomError(f"{path}: the front matter has no '{key}:' line; add one.")
    return result


def _text(path: Path, meta: dict[str, tuple[object, int]], key: str) -> str:
    value, line = meta.get(key, ("", 0))
    if value is None:
        return ""
    if isinstance(value, bool | dict | list):
        raise SmakomError(f"{path} line {line}: '{key}' must be text.")
    return str(value).strip()


def _date(path: Path, meta: dict[str, tuple[object, int]]) -> dt.date | None:
    value, line = meta.get("date", (None, 0))
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise SmakomError(
            f"{path} line {line}: 'date' must be a date like 2021-01-15, not {value!r}."
        ) from None


def _images(path: Path, meta: dict[str, tuple[object, int]]) -> str | None:
    value, line = meta.get("images", (None, 0))
    if value is None:
        return None
    if value not in IMAGE_MODES:
        raise SmakomError(
            f"{path} line {line}: 'images' must be embed (images inside every message) or "
            f"link (images from the web version), not {value!r}."
        )
    return str(value)
