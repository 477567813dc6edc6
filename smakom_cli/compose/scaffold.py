"""`smakom init`: a new newsletter folder, ready to edit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from smakom_cli.compose.render import default_templates_dir
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _


def create_newsletter(folder: Path, today: dt.date) -> list[Path]:
    """Write smakom.toml, subscribers.csv and a first issue; never overwrite a file."""
    source = default_templates_dir() / "init"
    files = {
        folder / "smakom.toml": source / "smakom.toml",
        folder / "subscribers.csv": source / "subscribers.csv",
        folder / "issues" / f"{today:%Y-%m}.md": source / "issue.md",
    }
    existing = [path for path in files if path.exists()]
    if existing:
        names = ", ".join(str(path) for path in existing)
        raise SmakomError(
            _("{names} already exist(s); smakom init never overwrites a file.").format(names=names)
        )
    (folder / "issues").mkdir(parents=True, exist_ok=True)
    for target, template in files.items():
        target.write_bytes(template.read_bytes())
    return list(files)
