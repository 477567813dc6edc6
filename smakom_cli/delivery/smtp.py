"""One SMTP session: connect, secure, log in, carry one message at a time, read what replies mean.

Everything here concerns a single connection; the sender (`sender.py`) decides how many
connections, at what rate, what to retry and what to write in the journal.
"""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from smakom_cli.config import SmtpConfig
from smakom_cli.delivery.outcome import Outcome
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.signin.providers import explain_reply
from smakom_cli.signin.resolver import Login

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Outgoing:
    """One message ready to go: CRLF line endings, every header in place."""

    key: str
    envelope_to: str
    message: bytes


class Unreachable(SmakomError):
    """Connecting failed in a way that may pass (refused, closed, 4xx greeting)."""


Transaction = tuple[Outcome, str]


def connect(smtp: SmtpConfig, login: Login | None) -> smtplib.SMTP:
    """An open, secured and logged-in connection; a SmakomError says what to fix."""
    if smtp.security == "none" and smtp.host not in LOCAL_HOSTS:
        raise SmakomError(
            _(
                '[smtp] security = "none" would send the password and every message '
                "unencrypted to {host}; it is only allowed for localhost. Use "
                '"starttls" or "tls".'
            ).format(host=smtp.host)
        )
    if smtp.username and login is None:
        raise SmakomError(
            _(
                "No password for {username}: run `smakom login` (or set "
                "SMAKOM_SMTP_PASSWORD for unattended runs)."
            ).format(username=smtp.username)
        )
    context = _tls_context(smtp) if smtp.security != "none" else None
    try:
        if smtp.security == "tls":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout, context=context
            )
        else:
            connection = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    except OSError as exc:
        raise explain(exc, smtp, login) from None
    try:
        _no_delay(connection)
        connection.ehlo()
        if smtp.security == "starttls":
            connection.starttls(context=context)
            connection.ehlo()
        if smtp.username and login is not None:
            _authenticate(connection, smtp, login)
    except OSError as exc:
        connection.close()
        raise explain(exc, smtp, login) from None
    except BaseException:
        connection.close()
        raise
    return connection


def _no_delay(connection: smtplib.SMTP) -> None:
    """Send each write at once (no Nagle): the body and the final "." go as two writes.

    `transact` writes the body, waits for the journal, then writes ".": with Nagle's
    algorithm the "." would wait for the server's delayed ACK of the body, about 40 ms
    per message on Linux, and the send would crawl at some 20 messages a second.
    """
    if connection.sock is not None:
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def check_login(smtp: SmtpConfig, login: Login | None) -> None:
    """Connect, secure the connection and log in exactly as a send would, then leave."""
    hang_up(connect(smtp, login))


def transact(
    connection: smtplib.SMTP,
    envelope_from: str,
    outgoing: Outgoing,
    before_end: Callable[[], None],
    *,
    body: bytes,
    after_end: Callable[[], None],
) -> Transaction:
    """One SMTP transaction, step by step, so a lost connection is placed exactly.

    `body` is `data_body(outgoing.message)`, prepared by the caller: the sender does it in
    the thread that builds the messages, so the connection's thread only talks.

    `before_end` runs just before the final "." of DATA, the only moment from which the
    server can have taken the message (the journal makes its record durable there). Lost
    before that, the message certainly did not arrive and is retried; lost after it, it
    may have arrived: uncertain, never retried, so nobody gets the issue twice. `after_end`
    runs as soon as the "." is handed to the operating system, which sends it on even if this
    process is killed: from then on the server has the whole message.
    """
    options = []
    if not outgoing.message.isascii() and connection.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    if not (envelope_from + outgoing.envelope_to).isascii():
        if not connection.has_extn("smtputf8"):
            return Outcome.FAILED, _("the server does not accept addresses with non-ASCII letters")
        options.append("SMTPUTF8")
    try:
        code, text = connection.mail(envelope_from, options)
        if code != 250:
            return _refused(connection, code, text, sender=True)
        code, text = connection.rcpt(outgoing.envelope_to)
        if code not in (250, 251):
            return _refused(connection, code, text)
        code, text = connection.docmd("DATA")
        if code != 354:
            return _refused(connection, code, text)
        connection.send(body)
    except smtplib.SMTPServerDisconnected as exc:
        return Outcome.DROPPED, _("the server closed the connection ({reason})").format(reason=exc)
    before_end()
    try:
        connection.send(b".\r\n")
        after_end()
        code, text = connection.getreply()
    except smtplib.SMTPServerDisconnected:
        return Outcome.UNCERTAIN, ""
    if code == 250:
        return Outcome.SENT, ""
    return _refused(connection, code, text)


def _refused(
    connection: smtplib.SMTP, code: int, text: bytes, *, sender: bool = False
) -> Transaction:
    reply = format_reply(code, text)
    if code == 421:  # the server is closing the connection: nothing was taken
        return Outcome.DROPPED, reply
    try:
        connection.rset()
    except smtplib.SMTPServerDisconnected:
        connection.close()
    if 400 <= code < 500:
        return Outcome.DEFERRED, reply
    return (Outcome.SENDER_REFUSED if sender else Outcome.FAILED), reply


def _tls_context(smtp: SmtpConfig) -> ssl.SSLContext:
    """Certificate and host name checked, against ca_file when the server has its own CA."""
    try:
        return ssl.create_default_context(cafile=smtp.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise SmakomError(
            _(
                "[smtp] ca_file {ca_file} cannot be used ({exc}). It must be the PEM "
                "certificate of the authority that signed the server's."
            ).format(ca_file=smtp.ca_file, exc=exc)
        ) from None


def _authenticate(connection: smtplib.SMTP, smtp: SmtpConfig, login: Login) -> None:
    """AUTH once with PLAIN (or LOGIN), credentials as UTF-8 (RFC 4616).

    smtplib's login() encodes them as ASCII (a password with å fails) and tries every
    mechanism in turn, so a wrong password would count twice against a lock-out limit.
    """
    if not connection.has_extn("auth"):
        raise SmakomError(
            _(
                "{where} does not offer a login on this connection. Check [smtp] "
                "security, or leave [smtp] username empty if the server needs no login."
            ).format(where=where(smtp))
        )
    mechanisms = connection.esmtp_features["auth"].upper().split()
    if login.method == "xoauth2":
        _authenticate_xoauth2(connection, smtp, login, mechanisms)
        return
    if "PLAIN" in mechanisms:
        token = _b64(f"\0{login.username}\0{login.secret}")
        code, text = connection.docmd("AUTH", f"PLAIN {token}")
    elif "LOGIN" in mechanisms:
        code, text = connection.docmd("AUTH", f"LOGIN {_b64(login.username)}")
        if code == 334:
            code, text = connection.docmd(_b64(login.secret))
    else:
        raise SmakomError(
            _(
                "{where} offers no login method smakom knows (it offers {join}; smakom "
                "uses PLAIN or LOGIN)."
            ).format(where=where(smtp), join=" ".join(mechanisms))
        )
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, text)


def _authenticate_xoauth2(
    connection: smtplib.SMTP, smtp: SmtpConfig, login: Login, mechanisms: list[str]
) -> None:
    """SASL XOAUTH2 with an OAuth2 access token, as Exchange Online and Gmail take it.

    The token goes on its own line after the 334, not on the AUTH line: a real token is a
    few thousand characters, more than some servers allow on a command line. A refused
    token may come back as a 334 with an error (Gmail does this); the empty reply it expects
    gets the final 535.
    """
    if "XOAUTH2" not in mechanisms:
        raise SmakomError(
            _(
                "{where} does not offer OAuth2 sign-in (XOAUTH2; it offers {join}). "
                'Check [smtp] host, or set [smtp] auth = "password".'
            ).format(where=where(smtp), join=" ".join(mechanisms))
        )
    code, text = connection.docmd("AUTH", "XOAUTH2")
    if code == 334:
        code, text = connection.docmd(
            _b64(f"user={login.username}\x01auth=Bearer {login.secret}\x01\x01")
        )
        if code == 334:
            code, text = connection.docmd("")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, text)


def explain(exc: OSError, smtp: SmtpConfig, login: Login | None) -> SmakomError:
    """One sentence for a failure to connect, secure the connection or log in."""
    place = where(smtp)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SmakomError(
            _(
                "The certificate of {place} could not be verified ({verify_message}). "
                "If the server uses its own certificate authority, set [smtp] ca_file "
                "to that authority's certificate (a PEM file)."
            ).format(place=place, verify_message=exc.verify_message)
        )
    if isinstance(exc, ssl.SSLError):
        return SmakomError(
            _(
                "The TLS handshake with {place} failed ({value}). Check [smtp] "
                'security: "starttls" is usual on port 587, "tls" on port 465.'
            ).format(place=place, value=exc.reason or exc)
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = format_reply(exc.smtp_code, exc.smtp_error)
        remedy = login.remedy if login is not None else Login("", "").remedy
        remedy = explain_reply(smtp.provider, reply) or remedy
        return SmakomError(
            _("{place} refused the login for {username} ({reply}). {remedy}").format(
                place=place, username=smtp.username, reply=reply, remedy=remedy
            )
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return SmakomError(
            _(
                "{place} does not offer STARTTLS, so nothing can be sent encrypted. If "
                "it expects TLS from the start (usually port 465), set [smtp] security "
                '= "tls".'
            ).format(place=place)
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc):
        # smtplib reports a server that never answers as a closed connection.
        return Unreachable(
            _(
                "{place} took the connection but did not answer within {timeout:g} seconds "
                "([smtp] timeout). The server may be overloaded, or another service listens "
                "there: check [smtp] host and port, or try again later."
            ).format(place=place, timeout=smtp.timeout)
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Unreachable(
            _(
                "{place} closed the connection before smakom could send ({reason}). Check "
                '[smtp] port and security: "starttls" is usual on port 587, "tls" on port 465.'
            ).format(place=place, reason=exc)
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = Unreachable if 400 <= exc.smtp_code < 500 else SmakomError
        reply = format_reply(exc.smtp_code, exc.smtp_error)
        advice = explain_reply(smtp.provider, reply)
        refused = _("{place} refused the connection ({reply}).").format(place=place, reply=reply)
        return kind(f"{refused} {advice}" if advice else refused)
    if isinstance(exc, smtplib.SMTPException):
        return SmakomError(f"{place}: {exc}.")
    return Unreachable(
        _(
            "Could not connect to {place}: {reason}. Check [smtp] host and port in smakom.toml."
        ).format(place=place, reason=exc.strerror or exc)
    )


def alive(connection: smtplib.SMTP) -> bool:
    """True when the server still answers on this connection (NOOP)."""
    try:
        return connection.noop()[0] == 250
    except OSError:  # smtplib's errors are OSErrors too
        return False


def hang_up(connection: smtplib.SMTP) -> None:
    """QUIT politely; a connection already gone needs no goodbye."""
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def data_body(message: bytes) -> bytes:
    """The message as DATA carries it, without the final dot: leading dots doubled (RFC 5321)."""
    # bytes.replace, not a regular expression: a tenth of the send thread's time went to
    # re.sub on the 40 KB messages (the layout's CSS has lines starting with ".").
    block = message.replace(b"\n.", b"\n..")
    if block.startswith(b"."):
        block = b"." + block
    if not block.endswith(b"\r\n"):
        block += b"\r\n"
    return block


def format_reply(code: int, text: bytes | str) -> str:
    """A server reply on one line, as the report shows it: "550 5.1.1 no such user"."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(f"{code} {text}".split())


def where(smtp: SmtpConfig) -> str:
    return f"{smtp.host}:{smtp.port}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
