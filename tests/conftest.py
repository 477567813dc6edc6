"""Shared fixtures: a real keyring backend per test, the example folder, the CLI runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

# Rich reads the width when its consoles are created: pin it before smakom_cli is imported.
os.environ["COLUMNS"] = "120"
os.environ.pop("SMAKOM_SMTP_PASSWORD", None)
# The interface language is decided when smakom_cli is first imported: the tests read English
# whatever this machine's locale; tests/test_i18n.py runs the Swedish in subprocesses.
os.environ["SMAKOM_LANG"] = "en"

import keyring
import pytest
from hypothesis import settings
from keyring.backend import KeyringBackend
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

from tests.oauth_server import OAuthTestServer, running_oauth_server
from tests.service_server import SERVICE_KEY, RunningService, running_service
from tests.smtp_server import (
    Certificates,
    SmtpTestServer,
    closed_port,
    make_certificates,
    running_server,
    use_server,
)

# No wall-clock deadline for a property's examples: on a loaded machine it fails fast code
# (test_any_sync_state_file_is_read_or_refused took 1 s for one example while two suites
# ran); speed is measured in benchmarks/, not in tests.
settings.register_profile("smakom", deadline=None)
settings.load_profile("smakom")

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


def pytest_configure(config: pytest.Config) -> None:
    # aiosmtpd itself sets the deprecated Session.login_data on every successful AUTH.
    config.addinivalue_line(
        "filterwarnings", "ignore:Session.login_data is deprecated:DeprecationWarning"
    )


@pytest.fixture(scope="session")
def smtp_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA and a certificate for 127.0.0.1, made once per test run."""
    return make_certificates(tmp_path_factory.mktemp("smtp-certificates"))


@pytest.fixture
def smtp_server(smtp_certificates: Certificates) -> Iterator[SmtpTestServer]:
    """An SMTP server requiring STARTTLS and AUTH, storing what it accepts."""
    with running_server(smtp_certificates) as server:
        yield server


@pytest.fixture
def live(newsletter: Path, smtp_server: SmtpTestServer) -> SmtpTestServer:
    """The example folder sending to the test server, its password in the test keyring."""
    from smakom_cli.signin.credentials import store_password

    use_server(newsletter, smtp_server)
    store_password(smtp_server.username, smtp_server.password)
    return smtp_server


@pytest.fixture
def smtp_server_tls(smtp_certificates: Certificates) -> Iterator[SmtpTestServer]:
    """The same server speaking TLS from the first byte (port 465 style)."""
    with running_server(smtp_certificates, implicit_tls=True) as server:
        yield server


@pytest.fixture
def closed_smtp_port() -> Iterator[int]:
    """A port on 127.0.0.1 where no server listens."""
    with closed_port() as port:
        yield port


@pytest.fixture
def oauth_server(smtp_certificates: Certificates) -> Iterator[OAuthTestServer]:
    """An OAuth2 server (device code, refresh tokens) on 127.0.0.1 over HTTPS."""
    with running_oauth_server(smtp_certificates) as server:
        yield server


@pytest.fixture(scope="session")
def one_click_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One `smakom serve` for the tests that send: a real send syncs with it first."""
    with running_service(tmp_path_factory.mktemp("service") / "service.sqlite3") as service:
        yield service


@pytest.fixture
def synced_newsletter(
    newsletter: Path, one_click_service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The example folder reaching its one-click service here (`[unsubscribe] service`; the
    links stay https), and the sync key set."""
    config = newsletter / "smakom.toml"
    text = config.read_text(encoding="utf-8")
    url = 'url = "https://www.smakom.se/avregistrera"'
    assert url in text
    local = f'{url}\nservice = "{one_click_service.base}"'
    config.write_text(text.replace(url, local, 1), encoding="utf-8")
    monkeypatch.setenv("SMAKOM_SERVICE_KEY", SERVICE_KEY)
    return newsletter
