"""`smakom init`: a new newsletter folder, ready to edit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from smakom_cli.compose.render import default_templates_dir
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _


def create_newsletter(
    folder: Path, today: dt.date, *, example: bool = False, language: str = "en"
) -> list[Path]:
    """Write smakom.toml, subscribers.csv and a first issue (with `example`, the January 2021
    issue with its images, settings and list instead); never overwrite a file.

    smakom.toml's comments are in `language` when there is a template in it (its values are
    the same in every language)."""
    if example:
        source = example_dir()
        files = {folder / name: source / name for name in _example_files(source)}
    else:
        source = default_templates_dir() / "init"
        files = {
            folder / "smakom.toml": _in_language(source / "smakom.toml", language),
            folder / "subscribers.csv": source / "subscribers.csv",
            folder / "issues" / f"{today:%Y-%m}.md": source / "issue.md",
        }
    existing = [path for path in files if path.exists()]
    if existing:
        names = ", ".join(str(path) for path in existing)
        raise SmakomError(
            _("{names} already exist(s); smakom init never overwrites a file.").format(names=names)
        )
    for target, template in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(template.read_bytes())
    return list(files)


def _in_language(template: Path, language: str) -> Path:
    translated = template.with_suffix(f".{language}{template.suffix}")
    return translated if translated.is_file() else template


def example_dir() -> Path:
    """The bundled example: inside the package when installed from a wheel, `examples/` at the
    top of the repository when run from a checkout."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "example"
    return installed if installed.is_dir() else package.parent / "examples"


def _example_files(source: Path) -> list[str]:
    """The example's own files, not what a dry run or an archive left beside them."""
    names = ["smakom.toml", "subscribers.csv", "unsubscribed.csv"]
    for folder in ("issues", "images"):
        names += sorted(f"{folder}/{path.name}" for path in (source / folder).iterdir())
    return names
