"""Files saved in another encoding than UTF-8 ("Unicode" in Notepad and Excel is UTF-16), and
control characters in what is quoted back: one line saying how to save the file, and nothing
reaches the terminal that it would act on (a NUL, an escape sequence)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.compose.render import default_templates_dir

# What a terminal would act on; the line break and the tab are all a message may carry.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

FILES = [
    "issues/2021-01.md",
    "smakom.toml",
    "subscribers.csv",
    "unsubscribed.csv",
    "templates/newsletter.txt",
]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
@pytest.mark.parametrize("name", FILES)
def test_a_file_saved_as_unicode_says_how_to_save_it(
    runner: CliRunner, newsletter: Path, name: str, encoding: str
) -> None:
    """Each file the tool reads, saved as UTF-16 or UTF-32 (with or without a BOM): exit 1,
    one line naming the file and UTF-8, and no NUL printed (the list's header came back with
    a NUL between its letters)."""
    path = newsletter / name
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        shutil.copyfile(default_templates_dir() / path.name, path)
    path.write_text(path.read_text(encoding="utf-8"), encoding=encoding)

    result = runner.invoke(app, ["preview", "issues/2021-01.md"])

    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert said.startswith("Error: ")
    assert path.name in said
    assert re.search(r"save (it|the file) as '?(CSV )?UTF-8", said, flags=re.IGNORECASE), said
    assert not CONTROL.search(result.output), repr(result.output)
    assert "Traceback" not in result.output


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(
        st.characters(codec="utf-8", exclude_characters="\n\r"), min_size=1, max_size=30
    ).filter(CONTROL.search)
)
@example(text="\x1f")  # white space to Python: the list read as empty, with no header
@example(text="email\x1b[2J,action,when,source,reason")
def test_control_characters_in_a_file_are_never_printed_as_they_are(
    runner: CliRunner, newsletter: Path, text: str
) -> None:
    """Whatever a hand-edited list's first line holds, it is refused (a line of characters
    that are white space to Python read as an empty list: nobody unsubscribed), and the
    error that quotes it shows its control characters as escapes."""
    (newsletter / "unsubscribed.csv").write_text(text + "\n", encoding="utf-8")

    result = runner.invoke(app, ["preview", "issues/2021-01.md"])

    assert result.exit_code == 1, result.output
    assert "unsubscribed.csv" in result.output
    assert not CONTROL.search(result.output), repr(result.output)
