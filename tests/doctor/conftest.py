"""The doctor's test setting: the example folder on Microsoft 365, and the local DNS server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns_server import DnsTestServer, running_dns_server
from tests.doctor.zones import MICROSOFT, TENANT
from tests.imap_server import PASSWORD as IMAP_PASSWORD
from tests.imap_server import DovecotServer, require_dovecot_2_3, running_dovecot
from tests.service_server import SECRET
from tests.smtp_server import HOST, SmtpTestServer, make_certificates, use_server
from tests.tools import require_program


@pytest.fixture(scope="module")
def dns_module() -> Iterator[DnsTestServer]:
    with running_dns_server() as server:
        yield server


@pytest.fixture
def dns(dns_module: DnsTestServer) -> DnsTestServer:
    """The DNS server with the good Microsoft 365 zone; a test may change it."""
    dns_module.zone = MICROSOFT
    dns_module.broken = {}
    dns_module.asked.clear()
    return dns_module


@pytest.fixture
def setup(
    synced_newsletter: Path, smtp_server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The example folder on Microsoft 365 as the servers here see it: the SMTP server (a
    password sign-in), the one-click service, the link key, and the DNS of smakom.se."""
    use_provider(synced_newsletter, smtp_server, "microsoft365")
    monkeypatch.setenv("SMAKOM_SMTP_PASSWORD", smtp_server.password)
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", SECRET)
    return synced_newsletter


def use_provider(folder: Path, smtp_server: SmtpTestServer, provider: str) -> None:
    """[smtp] at the test server, with the provider's DNS expectations (and a password)."""
    use_server(folder, smtp_server, extra=f'provider = "{provider}"\nauth = "password"\n')
    path = folder / "smakom.toml"
    text = path.read_text(encoding="utf-8").partition("\n[oauth]\n")[0]
    path.write_text(text + f'\n[oauth]\ntenant = "{TENANT}"\n', encoding="utf-8")


def use_inbox(folder: Path, dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """[inbox] at a new Dovecot mailbox, its password in the environment."""
    user = dovecot.new_user()
    values = {
        "host": HOST,
        "port": dovecot.imaps_port,
        "username": user,
        "ca_file": str(dovecot.ca_file),
    }
    path = folder / "smakom.toml"
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in values.items())
    path.write_text(path.read_text(encoding="utf-8") + f"\n[inbox]\n{lines}\n", encoding="utf-8")
    monkeypatch.setenv("SMAKOM_IMAP_PASSWORD", IMAP_PASSWORD)
    return user


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    """One Dovecot for the module; a new mailbox per test."""
    dovecot = require_program("dovecot", "dovecot-imapd")
    doveadm = require_program("doveadm", "dovecot-core")
    require_dovecot_2_3(dovecot)
    certificates = make_certificates(tmp_path_factory.mktemp("imap-certificates"))
    with running_dovecot(dovecot, doveadm, certificates) as server:
        yield server
