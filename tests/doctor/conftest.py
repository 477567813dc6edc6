"""The doctor's test setting: the example folder on Microsoft 365, and the local DNS server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from tests.dns_server import DnsTestServer, running_dns_server
from tests.doctor.zones import MICROSOFT, TENANT


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


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps nothing on disk, as a secure system keyring looks to smakom."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@pytest.fixture
def secure_keyring() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def use_provider(folder: Path, provider: str) -> None:
    """The example's smakom.toml on a provider (a password sign-in, until SMTP is checked)."""
    path = folder / "smakom.toml"
    text = path.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith('# provider = "'))
    text = text.replace(line, f'provider = "{provider}"\nauth = "password"')
    if provider == "microsoft365":
        text += f'\n[oauth]\ntenant = "{TENANT}"\n'

    path.write_text(text, encoding="utf-8")
