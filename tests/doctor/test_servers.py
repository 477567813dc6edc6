"""The doctor's SMTP, IMAP and one-click service checks against real servers on 127.0.0.1."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from smakom_cli.config import Config, InboxConfig, UnsubscribeConfig
from smakom_cli.doctor.inbox import check_inbox
from smakom_cli.doctor.service import check_service
from smakom_cli.doctor.smtp import check_smtp
from smakom_cli.errors import SmakomError
from smakom_cli.signin.resolver import Login
from tests.imap_server import PASSWORD as IMAP_PASSWORD
from tests.imap_server import DovecotServer
from tests.service_server import SECRET, SERVICE_KEY, RunningService
from tests.smtp_server import HOST, SmtpTestServer


def password(server: SmtpTestServer, secret: str = "") -> Login:
    return Login(server.username, secret or server.password)


def test_smtp_ok(smtp_server: SmtpTestServer) -> None:
    """STARTTLS with a verified certificate, AUTH offered and used; nothing is sent."""
    connection, sign_in, _limits = check_smtp(
        smtp_server.config(), lambda: password(smtp_server), 5
    )
    assert connection.status == "ok" and "certificate verified" in connection.found
    assert "PLAIN" in connection.found
    assert sign_in.status == "ok" and "a password" in sign_in.found
    assert smtp_server.messages == []


def test_sending_limits() -> None:
    """Rates above Microsoft 365's published limits (30 a minute, 10,000 a day) are a warning."""
    from smakom_cli.config import SmtpConfig
    from smakom_cli.doctor.smtp import limits

    within = SmtpConfig(provider="microsoft365", rate_per_minute=30, rate_per_day=10_000)
    assert limits(within).status == "ok"
    too_fast = dataclasses.replace(within, rate_per_minute=0)
    assert limits(too_fast).status == "warning" and "rate_per_minute" in limits(too_fast).todo
    assert limits(SmtpConfig()).status == "ok"


def test_smtp_wrong_password(smtp_server: SmtpTestServer) -> None:
    """A refused password is a problem naming the account."""
    _connection, sign_in, _limits = check_smtp(
        smtp_server.config(), lambda: password(smtp_server, "fel"), 5
    )
    assert sign_in.status == "problem" and smtp_server.username in sign_in.found


def test_smtp_not_signed_in(smtp_server: SmtpTestServer) -> None:
    """No password stored: the sign-in line says what to run."""

    def missing() -> Login:
        raise SmakomError("no password is stored for kansli@smakom.se. Run `smakom login` first.")

    _connection, sign_in, _limits = check_smtp(smtp_server.config(), missing, 5)
    assert sign_in.status == "problem" and "smakom login" in sign_in.found


def test_smtp_untrusted_certificate(smtp_server: SmtpTestServer) -> None:
    """Without the server's CA the certificate does not verify: one problem, no sign-in tried."""
    findings = check_smtp(smtp_server.config(ca_file=""), lambda: password(smtp_server), 5)
    assert [f.status for f in findings] == ["problem"]
    assert "certificate" in findings[0].found
    assert smtp_server.auth_attempts == 0


def test_smtp_nobody_listens(closed_smtp_port: int, smtp_server: SmtpTestServer) -> None:
    """A port where nothing listens: one problem line."""
    findings = check_smtp(smtp_server.config(port=closed_smtp_port), lambda: None, 5)
    assert [f.status for f in findings] == ["problem"]


def test_smtp_xoauth2(smtp_server: SmtpTestServer) -> None:
    """An OAuth2 token the server takes signs in with XOAUTH2; one it refuses is a problem."""
    smtp_server.handler.token_is_valid = lambda user, token: token == "giltig-token"
    smtp = dataclasses.replace(smtp_server.config(), auth="oauth2")
    token = Login(smtp_server.username, "giltig-token", method="xoauth2")
    _connection, sign_in, _limits = check_smtp(smtp, lambda: token, 5)
    assert sign_in.status == "ok" and "XOAUTH2" in sign_in.found
    refused = dataclasses.replace(token, secret="utgången")
    _connection, sign_in, _limits = check_smtp(smtp, lambda: refused, 5)
    assert sign_in.status == "problem"


def mailbox(dovecot: DovecotServer, tmp_path: Path, **changes: object) -> Config:
    inbox = InboxConfig(
        host=HOST,
        port=dovecot.imaps_port,
        username=dovecot.new_user(),
        ca_file=str(dovecot.ca_file),
        timeout=5,
    )
    return Config(path=tmp_path / "smakom.toml", inbox=dataclasses.replace(inbox, **changes))


def test_inbox_ok(dovecot: DovecotServer, tmp_path: Path) -> None:
    """Signed in, INBOX there; the folders smakom sorts into are made the first time."""
    config = mailbox(dovecot, tmp_path)
    finding = check_inbox(config, lambda: Login(config.inbox.username, IMAP_PASSWORD), 5)
    assert finding.status == "ok", finding
    assert "smakom/studsar" in finding.found


def test_inbox_with_every_folder_says_they_exist(dovecot: DovecotServer, tmp_path: Path) -> None:
    """With the folders smakom sorts into already made, the line says so (it said
    "`smakom inbox` creates  the first time it moves mail there", naming no folder)."""
    config = mailbox(dovecot, tmp_path)
    inbox = config.inbox
    with dovecot.client(inbox.username) as client:
        delimiter = client.list_folders()[0][1].decode()
        for name in (inbox.bounce_folder, inbox.unsubscribe_folder, inbox.auto_reply_folder):
            client.create_folder(name.replace("/", delimiter))

    finding = check_inbox(config, lambda: Login(inbox.username, IMAP_PASSWORD), 5)

    assert finding.status == "ok", finding
    assert finding.found == "signed in; reads 'INBOX'; the folders it sorts into exist"


def test_inbox_missing_folder(dovecot: DovecotServer, tmp_path: Path) -> None:
    """A folder to read that the mailbox lacks is a problem naming it.

    (A refused password is told as `smakom inbox` tells it; Dovecot delays every refusal by
    seconds, so it is tested once, in tests/returns.)
    """
    config = mailbox(dovecot, tmp_path, folder="Nyhetsbrev")
    missing = check_inbox(config, lambda: Login(config.inbox.username, IMAP_PASSWORD), 5)
    assert missing.status == "problem" and "'Nyhetsbrev'" in missing.found


def served(service: RunningService, tmp_path: Path) -> Config:
    unsubscribe = UnsubscribeConfig(url="https://www.smakom.se/avregistrera", service=service.base)
    (tmp_path / "subscribers.csv").write_text("email\nanna@kommun.se\n", encoding="utf-8")
    return Config(path=tmp_path / "smakom.toml", unsubscribe=unsubscribe)


def test_service_ok(one_click_service: RunningService, tmp_path: Path) -> None:
    """Health answers, the sync key is accepted, the link key is here: three ok lines."""
    config = served(one_click_service, tmp_path)
    findings = check_service(config, SECRET.encode, lambda: SERVICE_KEY, 5)
    assert [f.status for f in findings] == ["ok", "ok", "ok"], findings
    assert not (tmp_path / "unsubscribed.sync.json").exists()


def test_service_wrong_sync_key_and_no_link_key(
    one_click_service: RunningService, tmp_path: Path
) -> None:
    """A refused sync key and no link-signing key are each a problem."""
    config = served(one_click_service, tmp_path)
    findings = check_service(config, lambda: None, lambda: "x" * 40, 5)
    assert [f.status for f in findings] == ["ok", "problem", "problem"], findings
    assert "refused the sync key" in findings[1].found


def test_service_down(closed_smtp_port: int, tmp_path: Path) -> None:
    """Nothing listening at the service: a problem, and the sync key is not tried."""
    config = Config(
        path=tmp_path / "smakom.toml",
        unsubscribe=UnsubscribeConfig(
            url="https://www.smakom.se/avregistrera", service=f"http://{HOST}:{closed_smtp_port}"
        ),
    )
    findings = check_service(config, SECRET.encode, lambda: SERVICE_KEY, 2)
    assert [f.status for f in findings] == ["problem", "warning", "ok"], findings
