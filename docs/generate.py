"""Write the references in docs/ from the code, so they cannot drift from it.

    python docs/generate.py          # rewrite the generated parts of the pages
    python docs/generate.py --check  # exit 1 and name the page when one is stale

Each generated part sits between `<!-- generated: NAME -->` and `<!-- end of generated: NAME -->`
(NAME one of GENERATORS); tests/test_docs.py fails while a page differs from what this writes.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

# The docs are written in English, whatever the language of the machine running this.
os.environ["SMAKOM_LANG"] = "en"

from smakom_cli.config import FORMATS, MULTILINE_KEYS, RANGES, Config
from smakom_cli.errors import ExitCode

DOCS = Path(__file__).resolve().parent
TESTS = DOCS.parent / "tests"
PACKAGE = DOCS.parent / "smakom_cli"
# A test that needs a system program says so: require_program("dovecot", "dovecot-imapd").
_REQUIRE = re.compile(r'require_program\(\s*"([^"]+)",\s*"([^"]+)"\s*\)')

SHAPES = {
    "email": "an e-mail address",
    "url": "a full `http://` or `https://` address",
    "unsubscribe_url": "`https://` (plain `http://` only to `127.0.0.1` or `localhost`)",
    "color": "a colour like `#005a7a` or `#fff`",
    "dns_label": "a DKIM selector such as `s2026` or `mail.eu`",
    "list_id": "a name like `nyhetsbrev.smakom.se`: letters, digits and hyphens between dots",
}
KINDS = {str: "text", int: "whole number", float: "number"}


def settings_keys(
    cls: type = Config, prefix: str = "", listed: str = ""
) -> Iterator[tuple[str, type, object, str]]:
    """Every key of smakom.toml from the dataclasses: (dotted key, type, default, and the
    list of tables it sits in, or "")."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        if item.name == "path":  # where the file was found, not a key in it
            continue
        hint = hints[item.name]
        key = f"{prefix}{item.name}"
        if dataclasses.is_dataclass(hint):
            yield from settings_keys(hint, f"{key}.", listed)
        elif typing.get_origin(hint) is tuple:
            [member, *_] = typing.get_args(hint)
            yield from settings_keys(member, f"{key}.", key)
        else:
            yield key, hint, item.default, listed


def allowed(key: str, kind: type) -> str:
    """What config.py accepts for the key, in words."""
    if key in RANGES:
        return RANGES[key].describe(kind is int)
    if typing.get_origin(kind) is typing.Literal:  # one of a few words, as config.py checks
        return " or ".join(f"`{word}`" for word in typing.get_args(kind))
    if key in FORMATS:
        shape = FORMATS[key]
        if shape not in SHAPES:
            raise SystemExit(f"say in docs/generate.py's SHAPES what the shape {shape!r} allows")
        return f"{SHAPES[shape]}, or empty"
    if kind in (int, float):
        return "a finite number"
    return "text, over several lines if need be" if key in MULTILINE_KEYS else "one line of text"


def settings_reference() -> str:
    """The table of every key: its type, its default and the values it allows."""
    rows = ["| key | type | default | allowed |", "| --- | --- | --- | --- |"]
    for key, kind, default, listed in settings_keys():
        shown_key = f"`{key}` (in each `[[{listed}]]`)" if listed else f"`{key}`"
        if isinstance(default, str):
            shown_default = f'`"{default}"`' if default else '`""` (not set)'
        else:
            shown_default = f"`{default}`"
        shown_kind = KINDS[str if typing.get_origin(kind) is typing.Literal else kind]
        rows.append(f"| {shown_key} | {shown_kind} | {shown_default} | {allowed(key, kind)} |")
    return "\n".join(rows)


def exit_codes() -> str:
    """The table of what a command exits with, from the ExitCode enum."""
    rows = ["| code | name | meaning |", "| --- | --- | --- |"]
    rows += [f"| {code.value} | `{code.name}` | {code.meaning} |" for code in ExitCode]
    return "\n".join(rows)


def system_programs() -> str:
    """The table of the programs the tests start, from their require_program calls, each
    test file described by the first line of its docstring."""
    needs: dict[Path, dict[str, str]] = {}
    # A conftest.py's fixtures start programs for every test beside them.
    for test in sorted([*TESTS.rglob("test_*.py"), *TESTS.rglob("conftest.py")]):
        text = test.read_text(encoding="utf-8")
        found = dict(_REQUIRE.findall(text))
        if found:
            needs[test] = found
    rows = ["| tests | what they check | programs | Debian packages |", "| --- | --- | --- | --- |"]
    for test, programs in needs.items():
        what = _first_paragraph(_docstring(test))
        name = test.relative_to(TESTS.parent).as_posix()
        shown = ", ".join(f"`{program}`" for program in programs)
        packages = ", ".join(f"`{package}`" for package in dict.fromkeys(programs.values()))
        rows.append(f"| `{name}` | {what} | {shown} | {packages} |")
    return "\n".join(rows)


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def _first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n", maxsplit=1)[0].split())


def layout() -> str:
    """The map of the package, from the docstrings of its parts: what each is and what it may
    import (the modules inside a part are its files, each with its own docstring)."""
    rows = ["| part | what it is | may import |", "| --- | --- | --- |"]
    for package in sorted(p.parent for p in PACKAGE.glob("*/__init__.py")):
        docstring = _docstring(package / "__init__.py")
        found = re.search(r"May import: (.*?)(?:\n\n|$)", docstring, re.DOTALL)
        may = " ".join(found.group(1).split()) if found else ""
        rows.append(f"| `{package.name}/` | {_first_paragraph(docstring)} | {may} |")
    for module in sorted(PACKAGE.glob("*.py")):
        if not module.stem.startswith("_"):
            rows.append(f"| `{module.name}` | {_first_paragraph(_docstring(module))} | |")
    return "\n".join(rows)


GENERATORS: dict[str, tuple[str, Callable[[], str]]] = {
    "settings": ("settings.md", settings_reference),
    "exit-codes": ("exit-codes.md", exit_codes),
    "system-programs": ("development.md", system_programs),
    "layout": ("development.md", layout),
}


def generated(page: str) -> str:
    """The page with every generated part written afresh."""
    for name, (_file, make) in GENERATORS.items():
        start, end = f"<!-- generated: {name} -->", f"<!-- end of generated: {name} -->"
        pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.DOTALL)
        fresh = f"{start}\n{make()}\n{end}"
        page = pattern.sub(lambda _match, fresh=fresh: fresh, page)
    return page


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    stale = []
    for _name, (file, _make) in GENERATORS.items():
        path = DOCS / file
        text = path.read_text(encoding="utf-8")
        fresh = generated(text)
        if fresh != text:
            stale.append(file)
            if not check:
                path.write_text(fresh, encoding="utf-8")
    if check and stale:
        print(f"stale: {', '.join(stale)}; run python docs/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
