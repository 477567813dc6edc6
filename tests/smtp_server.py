"""A real SMTP server on 127.0.0.1 for tests: STARTTLS or implicit TLS, AUTH, faults on demand.

It is aiosmtpd's `Controller` (its own thread and event loop) with a handler that keeps every
message it accepts and can misbehave the way real servers do: greylisting, unknown users, a
connection closed after N messages, a 421, a connection lost after the message arrived. The
fixtures in conftest.py (`smtp_server`, `smtp_server_tls`, `smtp_certificates`,
`closed_smtp_port`) hand these out; a test typically does

    server = smtp_server
    server.faults.reject.add("okand@kommun.se")
    report = send_messages(..., server.config(), password=server.password, ...)
    assert server.recipients() == [...]
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from smakom_cli.config import SmtpConfig

HOST = "127.0.0.1"
USERNAME = "kansli@smakom.se"
# Not plain ASCII on purpose: Swedish passwords have å, ä and ö.
PASSWORD = "Vårsol-i-Åsele-2021"


@dataclass(frozen=True)
class Certificates:
    """A CA that signed the server's certificate, and another CA that did not."""

    ca: trustme.CA
    server_cert: trustme.LeafCert
    ca_file: Path
    other_ca_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        return context


def make_certificates(folder: Path) -> Certificates:
    """Certificates for 127.0.0.1 and localhost, with the CAs' PEM files in `folder`."""
    ca = trustme.CA()
    other = trustme.CA()
    ca_file = folder / "ca.pem"
    other_ca_file = folder / "other-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other.cert_pem.write_to_path(str(other_ca_file))
    return Certificates(ca, ca.issue_cert(HOST, "localhost"), ca_file, other_ca_file)


@dataclass(frozen=True)
class Received:
    envelope_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


@dataclass
class Faults:
    """Misbehaviour on demand; set before sending. Counts are of messages accepted so far."""

    greylist: set[str] = field(default_factory=set)
    """451 to the first RCPT TO for each of these addresses, 250 after that."""
    tempfail: set[str] = field(default_factory=set)
    """452 to every RCPT TO for these addresses (a mailbox that stays full)."""
    throttled: set[str] = field(default_factory=set)
    """451 to every RCPT TO for these addresses, as Exchange Online throttles a sender."""
    reject: set[str] = field(default_factory=set)
    """550 to these addresses, as sender (MAIL FROM) or recipient (RCPT TO)."""
    drop_after: int | None = None
    """Close the connection right after accepting this many messages (once)."""
    reply_421_after: int | None = None
    """Once this many messages are accepted, answer the next RCPT TO with 421 and close."""
    unavailable: bool = False
    """Answer every MAIL FROM with 421 and close: a server that will not take mail now."""
    unavailable_after: int | None = None
    """Once this many messages are accepted, behave as `unavailable`: a server going down."""
    gone_after: int | None = None
    """Once this many messages are accepted and answered, stop listening and close the
    connection: a server that goes away between two messages, never during one."""
    vanish_after_data: set[str] = field(default_factory=set)
    """Keep the message for these addresses but close the connection instead of answering,
    so the client cannot know it arrived."""
    quota_after: int | None = None
    """Once this many messages are accepted, refuse every MAIL FROM the way Exchange Online
    refuses a mailbox past its daily quota (554 5.2.2 ... sender quota exceeded)."""
    delay_data: float = 0.0
    """Seconds to wait before answering each DATA: a slow server, so a send takes time."""
    xoauth2_challenge: bool = False
    """Refuse a bad XOAUTH2 token Gmail's way: a 334 with a JSON error, then 535 after the
    client's empty reply (without it: Exchange's way, 535 5.7.3 at once)."""
    busy_connections: set[int] = field(default_factory=set)
    """Greet these connections (1 is the first) with a 421 and hang up, the way a server
    with too many connections open turns a client away."""


class RecordingHandler:
    """Stores what arrives (thread-safe), counts connections and AUTH attempts."""

    def __init__(self) -> None:
        self.faults = Faults()
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._greylisted: set[str] = set()
        self._tripped: set[str] = set()
        self.connections = 0
        self.connected_at: list[float] = []
        """When each connection came in (time.monotonic), turned away or not."""
        # Not "auth_attempts": aiosmtpd offers every handler attribute named auth_* as a
        # mechanism, and EHLO would list an "attempts" mechanism.
        self.login_attempts = 0
        self.listener: asyncio.AbstractServer | None = None
        """The listening socket's server, for a fault that stops listening."""
        self.token_is_valid: Callable[[str, str], bool] | None = None
        """Set to accept AUTH XOAUTH2: (user, access token) → whether it is a live token."""
        self.xoauth2_tokens: list[str] = []
        """Every token accepted with XOAUTH2, in order."""
        self.on_message: Callable[[Received], None] | None = None
        """Called with each message as it arrives, before the server answers it."""

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        with self._lock:
            self.login_attempts += 1
        ok = isinstance(data, LoginPassword) and data == (
            USERNAME.encode(),
            PASSWORD.encode(),
        )
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """SASL XOAUTH2 (developers.google.com/gmail/imap/xoauth2-protocol), as Exchange does it."""
        with self._lock:
            self.login_attempts += 1
        blob = await server.challenge_auth("") if len(args) == 1 else _b64decode(args[1])
        if blob is None:
            return AuthResult(
                success=False, handled=False, message="501 5.5.2 Cannot decode base64"
            )
        if not isinstance(blob, bytes):
            return AuthResult(success=False, handled=True)  # aiosmtpd has answered already
        # "user=<address>\x01auth=Bearer <token>\x01\x01"
        fields = dict(
            part.partition("=")[::2] for part in blob.decode("utf-8", "replace").split("\x01")
        )
        scheme, _, token = fields.get("auth", "").partition(" ")
        check = self.token_is_valid
        if check is not None and scheme == "Bearer" and check(fields.get("user", ""), token):
            with self._lock:
                self.xoauth2_tokens.append(token)
            return AuthResult(success=True, auth_data=fields["user"])
        if self.faults.xoauth2_challenge:
            error = '{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'
            await server.challenge_auth(error)
        return AuthResult(
            success=False, handled=False, message="535 5.7.3 Authentication unsuccessful"
        )

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        down_after = self.faults.unavailable_after
        if self.faults.unavailable or (down_after is not None and len(self.messages) >= down_after):
            _close_soon(server)
            return "421 4.3.2 Service not available, try again later"
        if address in self.faults.reject:
            return f"550 5.7.1 <{address}>: Sender address rejected: not owned by user"
        quota = self.faults.quota_after
        if quota is not None and len(self.messages) >= quota:
            return "554 5.2.2 STOREDRV.ClientSubmit; sender quota exceeded"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._trip("reply_421_after", self.faults.reply_421_after):
            _close_soon(server)
            return "421 4.3.2 Service shutting down, try again later"
        if address in self.faults.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.faults.tempfail:
            return "452 4.2.2 Mailbox full"
        if address in self.faults.throttled:
            return "451 4.7.500 Server busy. Please try again later"
        if address in self.faults.greylist and address not in self._greylisted:
            self._greylisted.add(address)
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.faults.delay_data:
            await asyncio.sleep(self.faults.delay_data)
        received = Received(
            str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(envelope.original_content)
        )
        with self._lock:
            self._messages.append(received)
        if self.on_message is not None:
            self.on_message(received)
        if self.faults.vanish_after_data & set(received.rcpt_tos):
            assert server.transport is not None
            server.transport.abort()  # the "250" below is never written
        elif self._trip("drop_after", self.faults.drop_after):
            _close_soon(server)
        elif self._trip("gone_after", self.faults.gone_after):
            assert self.listener is not None
            self.listener.close()  # no new connection from now on
            _close_soon(server)
        return "250 OK"

    def _trip(self, fault: str, after: int | None) -> bool:
        """True once, when a fault set to fire after `after` messages is due."""
        with self._lock:
            due = after is not None and len(self._messages) >= after
            if due and fault not in self._tripped:
                self._tripped.add(fault)
                return True
            return False


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None


def _close_soon(server: SMTP) -> None:
    """Close the connection right after the reply being returned has been written."""
    transport = server.transport
    assert transport is not None
    asyncio.get_running_loop().call_soon(transport.close)


class _Busy(asyncio.Protocol):
    """A connection turned away: a 421 greeting, then the server hangs up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"421 4.7.0 Too many connections, try again later\r\n")
        transport.close()


class _Controller(Controller):
    """aiosmtpd's Controller on a port the OS picks, counting connections."""

    def factory(self) -> SMTP | _Busy:
        handler = self.handler
        handler.connections += 1
        handler.connected_at.append(time.monotonic())
        if handler.connections in handler.faults.busy_connections:
            return _Busy()
        return super().factory()

    def _trigger_server(self) -> None:
        # Listening on port 0 gives a free port; learn it before the readiness probe uses it.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class SmtpTestServer:
    """A running server and what a test needs to talk to it and check what it got."""

    host: str
    port: int
    ca_file: Path
    security: str
    handler: RecordingHandler
    stop: Callable[[], None]
    """Stop listening and drop every connection: a server that goes away."""
    username: str = USERNAME
    password: str = PASSWORD

    @property
    def faults(self) -> Faults:
        return self.handler.faults

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def connections(self) -> int:
        return self.handler.connections

    @property
    def auth_attempts(self) -> int:
        return self.handler.login_attempts

    def recipients(self) -> list[str]:
        """Every RCPT TO of every accepted message, in the order they arrived."""
        return [rcpt for message in self.messages for rcpt in message.rcpt_tos]

    def config(self, **changes: Any) -> SmtpConfig:
        """An [smtp] section for this server, with retries fast enough for tests."""
        smtp = SmtpConfig(
            host=self.host,
            port=self.port,
            security=self.security,
            username=self.username,
            ca_file=str(self.ca_file),
            timeout=5.0,
            retry_attempts=3,
            retry_delay=0.05,
        )
        return replace(smtp, **changes)

    def toml(self) -> str:
        """The same [smtp] section as smakom.toml text."""
        smtp = self.config()
        return (
            "[smtp]\n"
            f'host = "{smtp.host}"\nport = {smtp.port}\nsecurity = "{smtp.security}"\n'
            f'username = "{smtp.username}"\nca_file = {str(self.ca_file)!r}\n'
            f"timeout = {smtp.timeout}\nretry_attempts = {smtp.retry_attempts}\n"
            f"retry_delay = {smtp.retry_delay}\n"
        )


@contextmanager
def running_server(
    certificates: Certificates,
    *,
    implicit_tls: bool = False,
    auth_exclude: Collection[str] = (),
    idle_timeout: float = 300.0,
) -> Iterator[SmtpTestServer]:
    """Start a server (STARTTLS required, or TLS from the first byte) and stop it after.

    `auth_exclude` names AUTH mechanisms not to offer (e.g. "PLAIN"); a connection silent
    for `idle_timeout` seconds is closed by the server, as real servers do (aiosmtpd's
    default is 300).
    """
    handler = RecordingHandler()
    context = certificates.server_context()
    if implicit_tls:
        # aiosmtpd does not see implicit TLS as TLS for auth_require_tls (aiosmtpd#281);
        # the connection is encrypted from the first byte anyway.
        tls: dict[str, Any] = {"ssl_context": context, "auth_require_tls": False}
    else:
        tls = {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
    controller = _Controller(
        handler,
        hostname=HOST,
        port=0,
        authenticator=handler.authenticate,
        auth_exclude_mechanism=auth_exclude,
        timeout=idle_timeout,
        **tls,
    )
    controller.start()
    handler.listener = controller.server
    handler.connections = 0  # the readiness probe is not a client
    handler.connected_at.clear()
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            controller.stop()

    try:
        yield SmtpTestServer(
            host=HOST,
            port=controller.port,
            ca_file=certificates.ca_file,
            security="tls" if implicit_tls else "starttls",
            handler=handler,
            stop=stop,
        )
    finally:
        stop()


@contextmanager
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens, held so nothing else takes it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]


def use_server(
    folder: Path, server: SmtpTestServer, extra: str = "", ca_file: str | None = None
) -> None:
    """Point a newsletter folder's [smtp] table at the test server (plus `extra` settings,
    and this ca_file if given); the rest of smakom.toml stays as it is."""
    smtp = server.toml() + extra
    if ca_file is not None:
        smtp = re.sub(r"(?m)^ca_file = .*$", f'ca_file = "{ca_file}"', smtp)
    path = folder / "smakom.toml"
    config = path.read_text(encoding="utf-8")
    config = re.sub(r"\[smtp\].*?(?=\n\[brand\])", lambda _match: smtp, config, flags=re.S)
    path.write_text(config, encoding="utf-8")
