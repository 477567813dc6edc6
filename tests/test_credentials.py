"""The password and the unsubscribe secret in the keyring, and `smakom login` / `logout`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.credentials import (
    delete_password,
    lookup_password,
    store_password,
    unsubscribe_secret,
)
from smakom_cli.errors import SmakomError

from .smtp_server import SmtpTestServer

USER = "kansli@smakom.se"
SECRET = "hemligt-Lösen-42"  # a password no output may ever show


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """A machine without any keyring backend (a headless server)."""
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


def test_password_is_stored_found_and_deleted(test_keyring: PlaintextKeyring) -> None:
    """The password goes to the keyring under service "smakom" and comes back out."""
    store_password(USER, SECRET)

    assert test_keyring.get_password("smakom", USER) == SECRET
    assert lookup_password(USER, {}) == SECRET
    assert delete_password(USER) is True
    assert lookup_password(USER, {}) is None
    assert delete_password(USER) is False


def test_environment_variable_wins_over_the_keyring() -> None:
    """SMAKOM_SMTP_PASSWORD is used for unattended runs, even when the keyring has one."""
    store_password(USER, "from-the-keyring")

    assert lookup_password(USER, {"SMAKOM_SMTP_PASSWORD": SECRET}) == SECRET


@pytest.mark.usefixtures("no_keyring")
def test_no_keyring_says_what_to_do() -> None:
    """Without a keyring backend, one sentence says so and names the environment variable."""
    with pytest.raises(SmakomError, match="no system keyring") as caught:
        lookup_password(USER, {})

    assert "SMAKOM_SMTP_PASSWORD" in str(caught.value)
    with pytest.raises(SmakomError, match="no system keyring"):
        store_password(USER, SECRET)
    assert lookup_password(USER, {"SMAKOM_SMTP_PASSWORD": SECRET}) == SECRET


def test_unsubscribe_secret_is_made_once_and_kept(test_keyring: PlaintextKeyring) -> None:
    """The first use makes a random secret; later uses (and issues) get the same one."""
    first = unsubscribe_secret("newsletter.smakom.se", {})

    assert unsubscribe_secret("newsletter.smakom.se", {}) == first
    assert len(first) >= 32
    assert test_keyring.get_password("smakom", "unsubscribe-secret:newsletter.smakom.se")
    assert unsubscribe_secret("other.smakom.se", {}) != first


def test_unsubscribe_secret_from_the_environment() -> None:
    """SMAKOM_UNSUBSCRIBE_SECRET carries the secret to a server without a keyring."""
    value = "k" * 43

    assert unsubscribe_secret("l", {"SMAKOM_UNSUBSCRIBE_SECRET": value}) == value.encode()
    with pytest.raises(SmakomError, match="too short"):
        unsubscribe_secret("l", {"SMAKOM_UNSUBSCRIBE_SECRET": "kort"})


@pytest.mark.usefixtures("no_keyring")
def test_unsubscribe_secret_without_keyring_says_what_to_do() -> None:
    """No keyring and no variable: the same clear sentence, naming the variable."""
    with pytest.raises(SmakomError, match="SMAKOM_UNSUBSCRIBE_SECRET"):
        unsubscribe_secret("newsletter.smakom.se", {})


def write_config(folder: Path, smtp: str) -> Path:
    path = folder / "smakom.toml"
    path.write_text(f'[sender]\nemail = "nyhetsbrev@smakom.se"\n\n{smtp}', encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, f'[smtp]\nhost = "smtp.example.org"\nusername = "{USER}"\n')


def test_login_stores_the_password_without_showing_it(
    runner: CliRunner, config: Path, test_keyring: PlaintextKeyring
) -> None:
    """`smakom login` asks for the password hidden, keeps it in the keyring, says where."""
    result = runner.invoke(app, ["--config", str(config), "login"], input=f"{SECRET}\n")

    assert result.exit_code == 0, result.output
    assert test_keyring.get_password("smakom", USER) == SECRET
    assert "system keyring" in result.output
    assert SECRET not in result.output


def test_logout_removes_the_password_and_says_so(runner: CliRunner, config: Path) -> None:
    """`smakom logout` deletes the password; a second logout says there was none."""
    store_password(USER, SECRET)

    first = runner.invoke(app, ["--config", str(config), "logout"])
    second = runner.invoke(app, ["--config", str(config), "logout"])

    assert first.exit_code == 0, first.output
    assert "Removed the password" in first.output
    assert lookup_password(USER, {}) is None
    assert second.exit_code == 0, second.output
    assert "No password" in second.output


def test_login_without_username_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    """Without [smtp] username there is nothing to log in as: one sentence, exit 1."""
    path = write_config(tmp_path, '[smtp]\nhost = "smtp.example.org"\n')

    result = runner.invoke(app, ["--config", str(path), "login"], input=f"{SECRET}\n")

    assert result.exit_code == 1
    assert "[smtp] has no username" in result.output


def test_login_check_against_the_server(
    runner: CliRunner, tmp_path: Path, smtp_server: SmtpTestServer
) -> None:
    """`smakom login --check` logs in to the real server with the stored password."""
    path = write_config(tmp_path, smtp_server.toml())
    store_password(smtp_server.username, smtp_server.password)

    result = runner.invoke(app, ["--config", str(path), "login", "--check"])

    assert result.exit_code == 0, result.output
    assert f"Logged in to 127.0.0.1:{smtp_server.port}" in result.output
    assert smtp_server.auth_attempts == 1
    assert smtp_server.messages == []
    assert smtp_server.password not in result.output


def test_login_check_with_a_wrong_password(
    runner: CliRunner, tmp_path: Path, smtp_server: SmtpTestServer
) -> None:
    """A refused password is one red line telling to run `smakom login`, password unshown."""
    path = write_config(tmp_path, smtp_server.toml())

    result = runner.invoke(
        app,
        ["--config", str(path), "login", "--check"],
        env={"SMAKOM_SMTP_PASSWORD": SECRET},
    )

    assert result.exit_code == 1
    assert "refused the login" in result.output
    assert "smakom login" in result.output
    assert SECRET not in result.output
