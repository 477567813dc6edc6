"""`smakom init`: a new newsletter folder, ready to edit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from smakom_cli.atomic import writing
from smakom_cli.compose.render import default_templates_dir
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import ngettext


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
            ngettext(
                "{names} already exists; smakom init never overwrites a file.",
                "{names} already exist; smakom init never overwrites a file.",
                len(existing),
            ).format(names=names)
        )
    written: list[Path] = []
    try:
        for target, template in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            with writing(target), target.open("xb") as file:
                written.append(target)
                file.write(template.read_bytes())
    except BaseException:
        # A folder left half made would refuse the next `smakom init` ("already exists").
        for path in written:
            path.unlink(missing_ok=True)
        raise
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
