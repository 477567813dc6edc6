"""Signing in with OAuth2 and sending over XOAUTH2, through the real CLI and real servers."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.signin.credentials import lookup_token_cache, store_password
from tests.conftest import MemoryKeyring
from tests.delivery.test_dry_run import active_addresses
from tests.oauth_server import OAuthTestServer
from tests.smtp_server import SmtpTestServer, use_server

SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
ISSUE = "issues/2021-01.md"


# Every send here syncs first with a real one-click service, as a real send does.
pytestmark = pytest.mark.usefixtures("synced_newsletter")


def use_oauth(folder: Path, smtp: SmtpTestServer, oauth: OAuthTestServer, extra: str = "") -> None:
    """The example folder sending to the test SMTP server, signing in at the test OAuth2 one.

    The SMTP server takes XOAUTH2 with the OAuth2 server's live SMTP tokens, nothing else.
    """
    use_server(folder, smtp, extra='auth = "oauth2"\n' + extra + oauth.toml() + "\n")
    smtp.handler.token_is_valid = lambda user, token: oauth.valid(user, token, SMTP_SCOPE)


def login(runner: CliRunner, oauth: OAuthTestServer) -> str:
    """`smakom login`, with the person at the sign-in page approving from another thread."""
    person = threading.Thread(target=oauth.approve_when_asked)
    person.start()
    result = runner.invoke(app, ["login"])
    person.join()
    assert result.exit_code == 0, result.output
    return result.output


def signed_in(runner: CliRunner, oauth: OAuthTestServer) -> str:
    """`smakom login` as the setup of a test: the code is accepted the moment it is shown."""
    oauth.approve_at_once = True
    result = runner.invoke(app, ["login"])
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


def test_login_warns_before_the_code_when_the_sign_in_would_be_kept_in_a_plain_file(
    runner: CliRunner,
    newsletter: Path,
    smtp_server: SmtpTestServer,
    oauth_server: OAuthTestServer,
    test_keyring: PlaintextKeyring,
) -> None:
    """The OAuth2 sign-in sends mail as the office while it lasts: a keyring that is a plain
    file is named before the code is shown, as the password login does."""
    use_oauth(newsletter, smtp_server, oauth_server)

    shown = login(runner, oauth_server)
    check = runner.invoke(app, ["login", "--check"])

    warning = (
        "Warning: the keyring backend (file PlaintextKeyring) keeps the OAuth2 sign-in "
        f"unencrypted in {test_keyring.file_path}"
    )
    assert warning in " ".join(shown.split())
    assert "send mail as kansli@smakom.se" in shown
    assert shown.index("PlaintextKeyring") < shown.index(oauth_server.grants[0].user_code)
    assert check.exit_code == 0, check.output
    assert "keeps the OAuth2 sign-in unencrypted" in check.output


def test_login_with_a_secure_keyring_gives_no_warning(
    runner: CliRunner,
    newsletter: Path,
    smtp_server: SmtpTestServer,
    oauth_server: OAuthTestServer,
    secure_keyring: MemoryKeyring,
) -> None:
    """With a keyring that is not a plain file the OAuth2 login says nothing about it."""
    use_oauth(newsletter, smtp_server, oauth_server)

    shown = login(runner, oauth_server)

    assert "unencrypted" not in shown
    assert lookup_token_cache("kansli@smakom.se") is not None


def test_login_check_tells_the_method_and_when_the_token_expires(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer, oauth_server: OAuthTestServer
) -> None:
    """`smakom login --check` says OAuth2 is in use and until when the token is valid."""
    use_oauth(newsletter, smtp_server, oauth_server)
    signed_in(runner, oauth_server)

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
    signed_in(runner, oauth_server)

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


def write_list(folder: Path, count: int) -> Path:
    """A subscriber list of `count` made-up people, in order."""
    path = folder / "many.csv"
    rows = [
        "email;name;organisation",
        *(f"person{n:03d}@example.org;P {n};K" for n in range(count)),
    ]
    path.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    return path


def assert_no_secret(folder: Path, texts: list[str], secrets: list[str]) -> None:
    """No token or code in any file of the newsletter folder, nor in what was printed."""
    assert secrets
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaked = [s for s in secrets if s.encode() in data]
            assert not leaked, path
    for text in texts:
        assert not any(secret in text for secret in secrets)


def test_login_then_send_over_xoauth2_delivers_everyone_once(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer, oauth_server: OAuthTestServer
) -> None:
    """After `smakom login`, `smakom send` signs in with XOAUTH2 and reaches everyone once."""
    use_oauth(newsletter, smtp_server, oauth_server)
    shown = login(runner, oauth_server)

    result = runner.invoke(app, ["send", ISSUE, "--yes"])

    assert result.exit_code == 0, result.output
    expected = active_addresses(newsletter)
    assert sorted(r.lower() for r in smtp_server.recipients()) == sorted(expected)
    assert len(smtp_server.handler.xoauth2_tokens) == 1
    assert_no_secret(newsletter, [shown, result.output], oauth_server.secrets())


def test_a_token_that_expires_half_way_is_renewed_at_reconnect(
    runner: CliRunner,
    newsletter: Path,
    smtp_server: SmtpTestServer,
    oauth_server: OAuthTestServer,
) -> None:
    """A send outliving its token signs in anew when it reconnects; nobody gets it twice."""
    oauth_server.token_lifetime = 2  # msal renews it after one second (MSAL_MARGIN)
    smtp_server.faults.delay_data = 0.15
    smtp_server.faults.drop_after = 14  # after 2.1 s, when the first token is dead
    use_oauth(newsletter, smtp_server, oauth_server)
    people = write_list(newsletter, 16)
    signed_in(runner, oauth_server)

    result = runner.invoke(app, ["send", ISSUE, "--yes", "--subscribers", str(people)])

    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.recipients()) == [f"person{n:03d}@example.org" for n in range(16)]
    first, *later = smtp_server.handler.xoauth2_tokens
    assert later
    assert later[-1] != first
    assert not oauth_server.valid("kansli@smakom.se", first, SMTP_SCOPE)
    assert oauth_server.refreshes >= 1


def test_an_expired_token_is_refused_the_way_exchange_does(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer, oauth_server: OAuthTestServer
) -> None:
    """A token the server no longer takes is "535 5.7.3"; smakom says to sign in again."""
    use_oauth(newsletter, smtp_server, oauth_server)
    signed_in(runner, oauth_server)
    oauth_server.expire_access_tokens()  # revoked on the server; msal still thinks it good

    result = runner.invoke(app, ["send", ISSUE, "--yes"])

    assert result.exit_code == 1
    assert "535 5.7.3 Authentication unsuccessful" in result.output
    assert "Run `smakom login` to sign in again" in result.output
    assert smtp_server.messages == []


def test_gmail_style_challenge_after_a_refused_token_is_answered(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer, oauth_server: OAuthTestServer
) -> None:
    """A refusal sent as a 334 challenge gets the empty reply, then the 535 is reported."""
    smtp_server.faults.xoauth2_challenge = True
    use_oauth(newsletter, smtp_server, oauth_server)
    signed_in(runner, oauth_server)
    oauth_server.expire_access_tokens()

    result = runner.invoke(app, ["login", "--check"])

    assert result.exit_code == 1
    assert "535 5.7.3" in result.output


def test_debug_output_shows_no_token(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer, oauth_server: OAuthTestServer
) -> None:
    """Even the traceback of `--debug` after a refused sign-in shows no token."""
    use_oauth(newsletter, smtp_server, oauth_server)
    signed_in(runner, oauth_server)
    oauth_server.expire_access_tokens()

    done = subprocess.run(
        [sys.executable, "-m", "smakom_cli", "--debug", "send", ISSUE, "--yes"],
        cwd=newsletter,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode != 0
    assert "Traceback" in done.stderr + done.stdout
    assert "535 5.7.3" in done.stderr + done.stdout
    assert_no_secret(newsletter, [done.stdout, done.stderr], oauth_server.secrets())


PROFILE = 'provider = "microsoft365"\nauth = "password"\nrate_per_minute = 0\n'


def test_a_daily_limit_stops_there_and_the_next_run_goes_on(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer
) -> None:
    """At rate_per_day the send stops, exit 4, says when to go on; the next run continues."""
    use_server(newsletter, smtp_server, extra=PROFILE + "rate_per_day = 50\n")
    store_password(smtp_server.username, smtp_server.password)
    people = write_list(newsletter, 60)
    everyone = [f"person{n:03d}@example.org" for n in range(60)]

    first = runner.invoke(app, ["send", ISSUE, "--yes", "--subscribers", str(people)])

    assert first.exit_code == 4, first.output
    assert smtp_server.recipients() == everyone[:50]
    assert "Send paused at the day's sending limit" in first.output
    assert "daily limit of 50 messages" in first.output
    assert "run the same command again after" in first.output
    second = runner.invoke(app, ["send", ISSUE, "--yes", "--subscribers", str(people)])
    assert second.exit_code == 0, second.output
    assert smtp_server.recipients() == everyone


def test_the_providers_quota_refusal_stops_the_send_resumably(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer
) -> None:
    """Microsoft's "sender quota exceeded" stops the send, fails nobody, and says when."""
    use_server(newsletter, smtp_server, extra=PROFILE)
    store_password(smtp_server.username, smtp_server.password)
    smtp_server.faults.quota_after = 5
    people = write_list(newsletter, 8)

    first = runner.invoke(app, ["send", ISSUE, "--yes", "--subscribers", str(people)])

    assert first.exit_code == 4, first.output
    assert len(smtp_server.messages) == 5
    assert "within 24 hours" in first.output
    report = next((newsletter / "sent").glob("*.report.txt")).read_text(encoding="utf-8")
    assert "Failed for good: 0" in report
    smtp_server.faults.quota_after = None
    second = runner.invoke(app, ["send", ISSUE, "--yes", "--subscribers", str(people)])
    assert second.exit_code == 0, second.output
    assert sorted(smtp_server.recipients()) == [f"person{n:03d}@example.org" for n in range(8)]


def test_without_a_keyring_login_says_so_before_showing_a_code(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer, oauth_server: OAuthTestServer
) -> None:
    """With no keyring to keep the tokens in, `smakom login` says so at once, no code shown."""
    use_oauth(newsletter, smtp_server, oauth_server)
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        result = runner.invoke(app, ["login"])
    finally:
        keyring.set_keyring(previous)

    assert result.exit_code == 1
    assert "OAuth2 sign-in keeps its tokens in the keyring" in result.output
    assert oauth_server.grants == []
