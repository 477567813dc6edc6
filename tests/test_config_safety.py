"""smakom.toml settings that would put the password or the mail at risk are refused by the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.signin.credentials import store_password

ISSUE = "issues/2021-01.md"
SECRET = "Hemligt-lösen-2021"


def add_to_table(folder: Path, table: str, line: str) -> None:
    """Put `line` first in `table` of the folder's smakom.toml (or at the top level)."""
    path = folder / "smakom.toml"
    text = path.read_text(encoding="utf-8")
    if table:
        header = f"\n{table}\n"
        assert header in text
        text = text.replace(header, f"{header}{line}\n", 1)
    else:
        text = f"{line}\n{text}"
    path.write_text(text, encoding="utf-8")


def replace_in_config(folder: Path, old: str, new: str) -> None:
    path = folder / "smakom.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def one_error_line(runner: CliRunner, args: list[str]) -> str:
    """The single line a refused command prints, after checking it exits 1 without a trace."""
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ")
    return line


@pytest.mark.parametrize("table", ["[smtp]", "[sender]", "[newsletter]", "[footer]", ""])
@pytest.mark.parametrize("command", [["check", ISSUE], ["send", ISSUE, "--dry-run"]])
def test_a_password_in_smakom_toml_is_refused_and_not_shown(
    runner: CliRunner, newsletter: Path, table: str, command: list[str]
) -> None:
    """A password written into smakom.toml, in any table, stops the command with one line
    that says to use `smakom login`, and the password itself is never printed."""
    add_to_table(newsletter, table, f'password = "{SECRET}"')
    line = one_error_line(runner, command)
    assert "a password must never be stored in smakom.toml" in line
    assert "smakom login" in line
    assert SECRET not in line
    assert not (newsletter / "outbox").exists()


def test_a_password_in_a_list_of_tables_is_refused_and_not_shown(
    runner: CliRunner, newsletter: Path
) -> None:
    """A password under [[social.links]] is refused with the same sentence, without
    printing it."""
    add_to_table(newsletter, "[[social.links]]", f'password = "{SECRET}"')
    line = one_error_line(runner, ["send", ISSUE, "--dry-run"])
    assert "a password must never be stored in smakom.toml" in line
    assert SECRET not in line


@pytest.mark.parametrize("security", ["ssl", "STARTTLS", "starttls ", "plain", ""])
def test_an_unknown_security_mode_names_the_allowed_ones(
    runner: CliRunner, newsletter: Path, security: str
) -> None:
    """[smtp] security other than starttls, tls or none is one line listing those three."""
    replace_in_config(newsletter, 'security = "starttls"', f'security = "{security}"')
    line = one_error_line(runner, ["check", ISSUE])
    assert "'smtp.security' must be one of starttls, tls, none" in line
    assert repr(security) in line


def test_plain_smtp_to_a_remote_server_is_refused_before_connecting(
    runner: CliRunner, newsletter: Path, closed_smtp_port: int
) -> None:
    """security = "none" to a host that is not this computer would send the password in
    clear: the send is refused with the reason, whatever the port."""
    replace_in_config(newsletter, 'security = "starttls"', 'security = "none"')
    replace_in_config(newsletter, "port = 587", f"port = {closed_smtp_port}")
    store_password("nyhetsbrev@smakom.se", SECRET)
    result = runner.invoke(app, ["send", ISSUE, "--to", "redaktor@example.net"])
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: ")
    assert "only allowed for localhost" in last
    assert SECRET not in result.output


@pytest.mark.parametrize(
    "url",
    [
        "ftp://www.smakom.se/avregistrera",
        "www.smakom.se/avregistrera",
        "//www.smakom.se/avregistrera",
        "mailto:avregistrera@smakom.se",
        "http://www.smakom.se/avregistrera",
    ],
)
@pytest.mark.parametrize("command", [["check", ISSUE], ["send", ISSUE, "--dry-run"]])
def test_an_unsubscribe_url_that_is_not_https_is_refused(
    runner: CliRunner, newsletter: Path, url: str, command: list[str]
) -> None:
    """The one-click unsubscribe link must be https (RFC 8058): any other scheme, or none,
    stops the command with one line saying so."""
    replace_in_config(newsletter, "https://www.smakom.se/avregistrera", url)
    line = one_error_line(runner, command)
    assert "'unsubscribe.url' must start with https://" in line
