"""`smakom login`, `login --check` and `logout` with OAuth2, through the real CLI."""

from __future__ import annotations

import threading
from pathlib import Path

from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.credentials import lookup_token_cache, store_password

from .oauth_server import OAuthTestServer
from .smtp_server import SmtpTestServer
from .test_cli_send import use_server


def use_oauth(folder: Path, smtp: SmtpTestServer, oauth: OAuthTestServer) -> None:
    """The example folder sending to the test SMTP server, signing in at the test OAuth2 one."""
    use_server(folder, smtp, extra='auth = "oauth2"\n' + oauth.toml() + "\n")


def login(runner: CliRunner, oauth: OAuthTestServer, *args: str) -> str:
    """`smakom login`, with the person at the sign-in page approving from another thread."""
    person = threading.Thread(target=oauth.approve_when_asked)
    person.start()
    result = runner.invoke(app, ["login", *args])
    person.join()
    assert result.exit_code == 0, result.output
    return result.output


def test_login_shows_the_code_and_signs_in(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer, oauth_server: OAuthTestServer
) -> None:
    """`smakom login` prints the address and the code, waits, and keeps the sign-in."""
    use_oauth(newsletter, smtp_server, oauth_server)

    shown = login(runner, oauth_server)

    assert f"open {oauth_server.base_url}/devicelogin" in shown
    assert oauth_server.grants[0].user_code in shown
    assert "Signed in as kansli@smakom.se with OAuth2" in shown
    assert lookup_token_cache("kansli@smakom.se") is not None
    assert not any(secret in shown for secret in oauth_server.secrets())


def test_login_check_tells_the_method_and_when_the_token_expires(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer, oauth_server: OAuthTestServer
) -> None:
    """`smakom login --check` says OAuth2 is in use and until when the token is valid."""
    use_oauth(newsletter, smtp_server, oauth_server)
    login(runner, oauth_server)

    result = runner.invoke(app, ["login", "--check"])

    assert result.exit_code == 0, result.output
    assert "with OAuth2" in result.output
    assert "valid until" in result.output
    assert not any(secret in result.output for secret in oauth_server.secrets())


def test_logout_removes_the_tokens_too(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer, oauth_server: OAuthTestServer
) -> None:
    """`smakom logout` removes password and OAuth2 sign-in; `--check` then says to log in."""
    use_oauth(newsletter, smtp_server, oauth_server)
    store_password(smtp_server.username, smtp_server.password)
    login(runner, oauth_server)

    result = runner.invoke(app, ["logout"])
    check = runner.invoke(app, ["login", "--check"])

    assert result.exit_code == 0, result.output
    assert "Removed the password" in result.output
    assert "Removed the OAuth2 sign-in" in result.output
    assert lookup_token_cache(smtp_server.username) is None
    assert check.exit_code == 1
    assert "run `smakom login`" in check.output


def test_a_declined_sign_in_is_one_red_line(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer, oauth_server: OAuthTestServer
) -> None:
    """Declining at the sign-in page ends `smakom login` with exit 1 and a sentence."""
    use_oauth(newsletter, smtp_server, oauth_server)
    person = threading.Thread(target=oauth_server.approve_when_asked, kwargs={"deny": True})
    person.start()
    result = runner.invoke(app, ["login"])
    person.join()

    assert result.exit_code == 1
    assert "declined" in result.output
    assert "Traceback" not in result.output
