"""Shared fixtures: a real keyring backend per test, the example folder, the CLI runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

# Rich reads the width when its consoles are created: pin it before smakom_cli is imported.
os.environ["COLUMNS"] = "120"
os.environ.pop("SMAKOM_SMTP_PASSWORD", None)

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def test_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlaintextKeyring]:
    """A file-backed keyring in tmp_path, for this process and any subprocess it starts."""
    data_home = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.delenv("SMAKOM_SMTP_PASSWORD", raising=False)
    backend = PlaintextKeyring()
    backend.file_path = str(data_home / "python_keyring" / backend.filename)
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def newsletter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the bundled example folder, as the working directory."""
    folder = tmp_path / "newsletter"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("outbox", "sent", "site"))
    monkeypatch.chdir(folder)
    return folder
