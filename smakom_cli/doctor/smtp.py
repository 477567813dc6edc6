"""The mail server as a send meets it: connection, TLS and certificate, the sign-in, limits.

Nothing is sent: the doctor connects, secures the connection, signs in as a send would and
says goodbye, never reaching MAIL FROM.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable

from smakom_cli.config import SmtpConfig
from smakom_cli.delivery.smtp import check_login, connect, hang_up, where
from smakom_cli.doctor.findings import Finding, shown
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.signin.resolver import Login

_MB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class _Greeting:
    tls: str
    auth: tuple[str, ...]
    size: int  # the SIZE the server announces (RFC 1870); 0 when it announces none


def check_smtp(
    smtp: SmtpConfig, login: Callable[[], Login | None], timeout: float
) -> list[Finding]:
    """Two lines: the connection (TLS, certificate, what it offers) and the sign-in."""
    smtp = dataclasses.replace(smtp, timeout=min(smtp.timeout, timeout))
    what = _("SMTP ({value})").format(value=where(smtp))
    try:
        greeting = _greet(smtp)
    except SmakomError as exc:
        return [Finding("problem", what, str(exc), _("Correct [smtp] in smakom.toml."))]
    return [_connection(smtp, greeting, what), _sign_in(smtp, greeting, login), limits(smtp)]


def limits(smtp: SmtpConfig) -> Finding:
    """The sending rates in [smtp] against the provider's published limits."""
    from smakom_cli.signin.providers import PROFILES

    what = _("sending limits")
    profile = PROFILES.get(smtp.provider)
    rates = _("{minute} a minute, {day} a day").format(
        minute=smtp.rate_per_minute or _("no limit"), day=smtp.rate_per_day or _("no limit")
    )
    if profile is None:
        return Finding("ok", what, rates)
    for key, mine, theirs in (
        ("rate_per_minute", smtp.rate_per_minute, profile.rate_per_minute),
        ("rate_per_day", smtp.rate_per_day, profile.rate_per_day),
    ):
        if theirs and not 0 < mine <= theirs:
            return Finding(
                "warning",
                what,
                _("{title} allows {theirs} ({key}), but smakom.toml says {mine}").format(
                    title=profile.title, theirs=theirs, key=key, mine=mine or _("no limit")
                ),
                _(
                    "Set [smtp] {key} = {theirs} or less, or remove it to use the provider's."
                ).format(key=key, theirs=theirs),
            )
    return Finding("ok", what, rates)


def _greet(smtp: SmtpConfig) -> _Greeting:
    """Connect and secure as a send does, without signing in, and read what is offered."""
    connection = connect(dataclasses.replace(smtp, username=""), None)
    try:
        sock = connection.sock
        tls = sock.version() or "TLS" if isinstance(sock, ssl.SSLSocket) else ""
        auth = tuple(connection.esmtp_features.get("auth", "").upper().split())
        size = connection.esmtp_features.get("size", "")
        return _Greeting(tls, auth, int(size) if size.isdigit() else 0)
    finally:
        hang_up(connection)


def _connection(smtp: SmtpConfig, greeting: _Greeting, what: str) -> Finding:
    offered = " ".join(greeting.auth) or "no sign-in"
    if not greeting.tls:
        return Finding(
            "warning",
            what,
            _("unencrypted, which smakom allows to this computer only; offers {offered}").format(
                offered=offered
            ),
            _('Use security = "starttls" or "tls" for any server that is not on this computer.'),
        )
    found = _("{tls}, certificate verified for {host}; offers {offered}").format(
        tls=greeting.tls, host=smtp.host, offered=offered
    )
    if greeting.size:
        found += f"; takes messages up to {greeting.size / _MB:.0f} MB"
        if greeting.size < smtp.max_message_mb * _MB:
            return Finding(
                "warning",
                what,
                found,
                _(
                    "Set [smtp] max_message_mb = {value} in smakom.toml, so `smakom check` stops "
                    "an issue the server would refuse."
                ).format(value=greeting.size // _MB),
            )
    return Finding("ok", what, found)


def _sign_in(smtp: SmtpConfig, greeting: _Greeting, login: Callable[[], Login | None]) -> Finding:
    what = _("SMTP sign-in ({value})").format(value=smtp.username or "none")
    if not smtp.username:
        return Finding(
            "warning",
            what,
            _("no [smtp] username, so smakom sends without signing in (a relay that needs none)"),
            _("Set [smtp] username if your provider needs a sign-in (every public one does)."),
        )
    method = "XOAUTH2" if smtp.auth == "oauth2" else "PLAIN or LOGIN"
    if smtp.auth == "oauth2" and "XOAUTH2" not in greeting.auth:
        return Finding(
            "problem",
            what,
            _("the server does not offer OAuth2 sign-in (XOAUTH2), only {value}").format(
                value=" ".join(greeting.auth)
            ),
            _('Check [smtp] host, or set [smtp] auth = "password".'),
        )
    try:
        found = login()
        check_login(smtp, found)
    except SmakomError as exc:
        return Finding("problem", what, shown(str(exc), 400), "")
    if found is not None and found.method == "xoauth2":
        used = _("an OAuth2 token (XOAUTH2) that renews itself")
    else:
        used = _("a password ({method})").format(method=method)
    return Finding("ok", what, _("signed in with {used}; nothing was sent").format(used=used))
