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
from smakom_cli.errors import SmakomError
from smakom_cli.signin.credentials import (
    Password,
    create_unsubscribe_secret,
    delete_password,
    find_password,
    store_password,
    unsubscribe_secret,
)
from tests.conftest import MemoryKeyring
from tests.smtp_server import SmtpTestServer

USER = "kansli@smakom.se"
SECRET = "hemligt-Lösen-42"  # a password no output may ever show


def password_in(environ: dict[str, str]) -> str | None:
    found = find_password(USER, environ)
    return found.value if found else None


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
    assert password_in({}) == SECRET
    assert delete_password(USER) is True
    assert password_in({}) is None
    assert delete_password(USER) is False


def test_environment_variable_wins_over_the_keyring() -> None:
    """SMAKOM_SMTP_PASSWORD is used for unattended runs, even when the keyring has one."""
    store_password(USER, "from-the-keyring")

    assert password_in({"SMAKOM_SMTP_PASSWORD": SECRET}) == SECRET


@pytest.mark.usefixtures("no_keyring")
def test_no_keyring_says_what_to_do() -> None:
    """Without a keyring backend, one sentence says so and names the environment variable."""
    with pytest.raises(SmakomError, match="no system keyring") as caught:
        password_in({})

    assert "SMAKOM_SMTP_PASSWORD" in str(caught.value)
    with pytest.raises(SmakomError, match="no system keyring"):
        store_password(USER, SECRET)
    assert password_in({"SMAKOM_SMTP_PASSWORD": SECRET}) == SECRET


def test_unsubscribe_secret_is_made_once_and_kept(test_keyring: PlaintextKeyring) -> None:
    """Making the key stores a random secret; later uses (and issues) get the same one."""
    assert unsubscribe_secret("newsletter.smakom.se", {}) is None
    first = create_unsubscribe_secret("newsletter.smakom.se")

    assert unsubscribe_secret("newsletter.smakom.se", {}) == first
    assert len(first) >= 32
    assert test_keyring.get_password("smakom", "unsubscribe-secret:newsletter.smakom.se")
    assert create_unsubscribe_secret("other.smakom.se") != first


def test_looking_up_the_secret_never_writes(test_keyring: PlaintextKeyring) -> None:
    """Asking for a key that was never made returns None and leaves the keyring alone."""
    store_password(USER, SECRET)
    before = Path(test_keyring.file_path).read_bytes()

    assert unsubscribe_secret("newsletter.smakom.se", {}) is None
    assert Path(test_keyring.file_path).read_bytes() == before


def test_an_existing_secret_is_never_replaced() -> None:
    """Making the key again is refused: a new key would break every link already sent."""
    first = create_unsubscribe_secret("newsletter.smakom.se")

    with pytest.raises(SmakomError, match="already holds the unsubscribe-link key"):
        create_unsubscribe_secret("newsletter.smakom.se")
    assert unsubscribe_secret("newsletter.smakom.se", {}) == first


def test_the_password_says_where_it_came_from() -> None:
    """The environment variable or the keyring backend is named; the value never shows."""
    store_password(USER, "from-the-keyring")

    from_keyring = find_password(USER, {})
    from_environment = find_password(USER, {"SMAKOM_SMTP_PASSWORD": SECRET})

    assert from_keyring is not None
    assert (from_keyring.source, from_keyring.where) == ("keyring", "file PlaintextKeyring")
    assert from_keyring.value == "from-the-keyring"
    assert from_environment == Password(SECRET, "environment", "SMAKOM_SMTP_PASSWORD")
    assert SECRET not in repr(from_environment)
    assert SECRET not in str(from_environment)
    assert find_password("nobody@smakom.se", {}) is None


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
    assert password_in({}) is None
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


def test_login_warns_about_a_plaintext_keyring(
    runner: CliRunner, config: Path, test_keyring: PlaintextKeyring
) -> None:
    """A keyring that is a plain file is named, with how to choose a secure one."""
    result = runner.invoke(app, ["--config", str(config), "login"], input=f"{SECRET}\n")

    assert result.exit_code == 0, result.output
    assert "Warning: the keyring backend (file PlaintextKeyring) keeps passwords unencrypted" in (
        result.output
    )
    assert test_keyring.file_path in result.output
    assert "PYTHON_KEYRING_BACKEND" in result.output
    assert "SMAKOM_SMTP_PASSWORD" in result.output


def test_login_check_warns_about_a_plaintext_keyring(
    runner: CliRunner, tmp_path: Path, smtp_server: SmtpTestServer, test_keyring: PlaintextKeyring
) -> None:
    """`smakom login --check` gives the same warning, and still logs in."""
    path = write_config(tmp_path, smtp_server.toml())
    store_password(smtp_server.username, smtp_server.password)

    result = runner.invoke(app, ["--config", str(path), "login", "--check"])

    assert result.exit_code == 0, result.output
    assert "keeps passwords unencrypted in " + test_keyring.file_path in result.output


def test_a_secure_keyring_gets_no_warning(
    runner: CliRunner, config: Path, secure_keyring: MemoryKeyring
) -> None:
    """With a keyring that is not a plain file, login says nothing about encryption."""
    result = runner.invoke(app, ["--config", str(config), "login"], input=f"{SECRET}\n")

    assert result.exit_code == 0, result.output
    assert "unencrypted" not in result.output
    assert secure_keyring.entries[("smakom", USER)] == SECRET


LIST_SECRET = "unsubscribe-secret:nyhetsbrev.smakom.se"


def test_preview_check_and_dry_run_leave_the_keyring_alone(
    runner: CliRunner, newsletter: Path, test_keyring: PlaintextKeyring
) -> None:
    """Looking at an issue never writes to the keyring; its links use a throwaway key."""
    store_password(USER, SECRET)
    keyring_file = Path(test_keyring.file_path)
    before = keyring_file.read_bytes()

    for command in (
        ["preview", "issues/2021-01.md"],
        ["check", "issues/2021-01.md"],
        ["send", "issues/2021-01.md", "--dry-run"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        assert "`smakom login` makes it" in result.output
        assert "throwaway key" in result.output

    assert keyring_file.read_bytes() == before
    assert test_keyring.get_password("smakom", LIST_SECRET) is None


def test_login_makes_the_unsubscribe_key_once_and_says_so(
    runner: CliRunner, newsletter: Path, test_keyring: PlaintextKeyring
) -> None:
    """`smakom login` makes the link-signing key the first time; later logins keep it."""
    first = runner.invoke(app, ["login"], input=f"{SECRET}\n")
    key = test_keyring.get_password("smakom", LIST_SECRET)
    second = runner.invoke(app, ["login"], input=f"{SECRET}\n")

    assert first.exit_code == 0, first.output
    assert "Made the key that signs the unsubscribe links of nyhetsbrev.smakom.se" in first.output
    assert key
    assert key not in first.output
    assert second.exit_code == 0, second.output
    assert "Made the key" not in second.output
    assert test_keyring.get_password("smakom", LIST_SECRET) == key
    preview = runner.invoke(app, ["preview", "issues/2021-01.md"])
    assert preview.exit_code == 0, preview.output
    assert "throwaway" not in preview.output


def test_an_unsubscribe_link_without_the_key_is_refused(
    runner: CliRunner, newsletter: Path, test_keyring: PlaintextKeyring
) -> None:
    """A link cannot be checked on a computer without the list's key: one line, no write."""
    result = runner.invoke(app, ["unsubscribe", "https://www.smakom.se/avregistrera?token=abc"])

    assert result.exit_code == 1
    assert "its key is not in the keyring" in result.output
    assert test_keyring.get_password("smakom", LIST_SECRET) is None


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_a_send_names_the_key_that_is_missing(
    runner: CliRunner, synced_newsletter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the password and the link key in the environment, only the sync key is missing,
    and that is what a send names (it said "Set SMAKOM_SMTP_PASSWORD (and …)")."""
    monkeypatch.setenv("SMAKOM_SMTP_PASSWORD", SECRET)
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", "x" * 40)
    monkeypatch.delenv("SMAKOM_SERVICE_KEY")
    result = runner.invoke(app, ["send", "issues/2021-01.md", "--yes"])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "Set SMAKOM_SERVICE_KEY in the environment" in said
    assert "--no-sync" in said
    assert "SMAKOM_SMTP_PASSWORD" not in said
