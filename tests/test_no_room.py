"""A file that cannot grow (a full disk, a quota, `ulimit -f`): every command that writes names
the file it could not write and says what to do, and leaves nothing half made behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app

pytestmark = pytest.mark.skipif(os.name == "nt", reason="a file size limit (RLIMIT_FSIZE) is POSIX")

ADVICE = "make room on the disk, or have the limit on file sizes raised"


def without_room(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`smakom ARGUMENTS` in `folder` where no file may grow beyond 0 bytes (the shell
    ignores SIGXFSZ, so a write fails with "File too large" instead of killing)."""
    limited = ["sh", "-c", "trap '' XFSZ; ulimit -f 0; exec \"$@\"", "sh"]
    command = [*limited, sys.executable, "-m", "smakom_cli", *arguments]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)


def said(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


@pytest.mark.parametrize(
    ("arguments", "file"),
    [
        (["send", "issues/2021-01.md", "--dry-run"], "outbox/2021-01/00001-"),
        (["preview", "issues/2021-01.md", "--html", "proof.html"], "proof.html"),
        (["archive"], "site/2021-01.html"),
        (["unsubscribe", "anna.aberg@example.com"], "unsubscribed.csv"),
    ],
)
def test_a_file_that_cannot_grow_is_named_with_what_to_do(
    newsletter: Path, arguments: list[str], file: str
) -> None:
    """The error names the file (it said only "File too large") and exits 1, no traceback."""
    before = (newsletter / "unsubscribed.csv").read_bytes()

    result = without_room(newsletter, *arguments)

    assert result.returncode == 1, said(result)
    assert file in said(result)
    assert "could not be written (File too large)" in said(result)
    assert ADVICE in said(result)
    assert "Traceback" not in said(result)
    assert (newsletter / "unsubscribed.csv").read_bytes() == before
    assert not list(newsletter.glob(".*.tmp"))


def test_init_without_room_leaves_no_half_made_folder(runner: CliRunner, tmp_path: Path) -> None:
    """`smakom init` that cannot write removes what it wrote, so the same command works once
    there is room (a half-made folder was refused: "smakom.toml already exists")."""
    result = without_room(tmp_path, "init", "brev")

    assert result.returncode == 1, said(result)
    assert f"{Path('brev') / 'smakom.toml'} could not be written" in said(result)
    assert not [path for path in (tmp_path / "brev").rglob("*") if path.is_file()]
    again = runner.invoke(app, ["init", str(tmp_path / "brev")])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "brev" / "smakom.toml").stat().st_size > 0


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_named_as_the_output(newsletter: Path) -> None:
    """`smakom check … > /dev/full`: the error says the output could not be written (it said
    only "No space left on device", as if a file of the folder were meant)."""
    command = [sys.executable, "-m", "smakom_cli", "check", "issues/2021-01.md", "--offline"]
    with Path("/dev/full").open("w") as full:
        result = subprocess.run(
            command, cwd=newsletter, stdout=full, stderr=subprocess.PIPE, text=True, check=False
        )

    assert result.returncode == 1, result.stderr
    assert "the output could not be written (No space left on device)" in result.stderr
    assert "Traceback" not in result.stderr
