"""The IMAP side of OAuth2: the token `smakom inbox` asks for signs in to a real Dovecot."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.config import load_config
from smakom_cli.signin.oauth import access_token
from tests.imap_oauth_server import OAuthImapServer, running_oauth_dovecot
from tests.oauth_server import OAuthTestServer
from tests.smtp_server import HOST, USERNAME, Certificates
from tests.tools import require_program


@pytest.fixture
def oauth_imap(
    smtp_certificates: Certificates, oauth_server: OAuthTestServer
) -> Iterator[OAuthImapServer]:
    """Dovecot taking XOAUTH2, asking the test OAuth2 server about each token."""
    dovecot = require_program("dovecot", "dovecot-imapd")
    with running_oauth_dovecot(dovecot, smtp_certificates, oauth_server) as server:
        yield server


def connect(server: OAuthImapServer) -> IMAPClient:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    return IMAPClient(HOST, server.port, ssl=True, ssl_context=context, timeout=10)


@pytest.fixture
def config_path(tmp_path: Path, oauth_server: OAuthTestServer) -> Path:
    path = tmp_path / "smakom.toml"
    path.write_text(
        f'[sender]\nemail = "{USERNAME}"\n[smtp]\nauth = "oauth2"\nusername = "{USERNAME}"\n'
        + oauth_server.toml(),
        encoding="utf-8",
    )
    return path


def test_the_inbox_token_signs_in_to_imap_with_xoauth2(
    runner: CliRunner,
    config_path: Path,
    oauth_server: OAuthTestServer,
    oauth_imap: OAuthImapServer,
) -> None:
    """After `smakom login`, the IMAP token smakom hands out opens the mailbox over XOAUTH2."""
    oauth_server.approve_at_once = True
    result = runner.invoke(app, ["--config", str(config_path), "login"])
    assert result.exit_code == 0, result.output

    token = access_token(load_config(config_path), "imap")
    client = connect(oauth_imap)
    try:
        assert b"AUTH=XOAUTH2" in client.capabilities()
        client.oauth2_login(token.username, token.token)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_an_expired_imap_token_is_refused(
    runner: CliRunner,
    config_path: Path,
    oauth_server: OAuthTestServer,
    oauth_imap: OAuthImapServer,
) -> None:
    """The IMAP server refuses a token that is no longer live, as Exchange does."""
    oauth_server.approve_at_once = True
    assert runner.invoke(app, ["--config", str(config_path), "login"]).exit_code == 0
    token = access_token(load_config(config_path), "imap")
    oauth_server.expire_access_tokens()

    client = connect(oauth_imap)
    with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
        client.oauth2_login(token.username, token.token)
    client.shutdown()


def test_smakom_inbox_signs_in_with_the_sending_mailboxs_oauth2(
    runner: CliRunner,
    config_path: Path,
    oauth_server: OAuthTestServer,
    oauth_imap: OAuthImapServer,
) -> None:
    """With [smtp] auth = "oauth2" and the same mailbox in [inbox], `smakom inbox` needs no
    password: it signs in over XOAUTH2 with the token `smakom login` keeps renewing."""
    with config_path.open("a", encoding="utf-8") as file:
        file.write(
            f'\n[inbox]\nhost = "{HOST}"\nport = {oauth_imap.port}\nsecurity = "tls"\n'
            f'username = "{USERNAME}"\nca_file = "{oauth_imap.ca_file}"\n'
        )
    oauth_server.approve_at_once = True
    assert runner.invoke(app, ["--config", str(config_path), "login"]).exit_code == 0

    checked = runner.invoke(app, ["--config", str(config_path), "login", "--inbox", "--check"])
    assert checked.exit_code == 0, checked.output
    assert "with OAuth2" in checked.output
    result = runner.invoke(app, ["--config", str(config_path), "inbox", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "No new mail in INBOX" in result.output
