"""Asking DNS for the sender domain's records (dnspython), every answer a plain `Answer`.

A DNS answer comes from outside and is hostile: whatever the server says (nothing, NXDOMAIN,
SERVFAIL, a record of 60 KB, bytes that are no text) becomes an `Answer` with records or a
one-line reason, never an exception. The verdicts (`domain.py`) only ever see `Answer`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

if TYPE_CHECKING:
    import dns.resolver

Kind = Literal["TXT", "CNAME", "MX"]
# Far more than any real domain publishes at one name; a server sending more is misbehaving.
MAX_RECORDS = 50
DEFAULT_TIMEOUT = 5.0
DNS_PORT = 53
# A resolver that has left this many questions unanswered is not asked again in this run:
# a dead DNS server must not cost the full timeout for every one of the records.
MAX_TIMEOUTS = 2


@dataclass(frozen=True)
class Answer:
    """What DNS said about one name and type: its records, or why there are none to read.

    `records` are printable text (TXT strings joined, as SPF and DKIM read them; a CNAME's
    target; an MX as "preference host"). `failure` is empty when the server answered, even
    with no records (the name or the type does not exist); otherwise it says what went wrong.
    """

    name: str
    kind: Kind
    records: tuple[str, ...] = ()
    failure: str = ""


def parse_server(text: str) -> tuple[str, int]:
    """`HOST[:PORT]` (an IPv6 address in brackets when it has a port) for `--dns`."""
    host, port = text.strip(), DNS_PORT
    if host.startswith("["):
        host, _bracket, rest = host[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif host.count(":") == 1:
        host, _colon, digits = host.partition(":")
        port = _port(digits, text)
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise SmakomError(
            _(
                "--dns {text!r}: give the DNS server as an IP address, e.g. 9.9.9.9 or "
                "127.0.0.1:5353."
            ).format(text=text)
        ) from None
    return host, port


def _port(digits: str, text: str) -> int:
    if digits.isdigit() and 1 <= int(digits) <= 65535:
        return int(digits)
    raise SmakomError(
        _("--dns {text!r}: the port must be a whole number from 1 to 65535.").format(text=text)
    )


class Lookup:
    """One resolver for a whole doctor run: the system's, or the server `--dns` names."""

    def __init__(self, server: tuple[str, int] | None, timeout: float = DEFAULT_TIMEOUT):
        import dns.resolver

        self._problem = ""
        self._timeouts = 0
        self._resolver: dns.resolver.Resolver | None = None
        try:
            resolver = dns.resolver.Resolver(configure=server is None)
        except dns.resolver.NoResolverConfiguration:
            self._problem = _("this computer has no DNS server configured")
            return
        if server is not None:
            resolver.nameservers = [server[0]]
            resolver.port = server[1]
        resolver.lifetime = timeout
        resolver.timeout = timeout
        self._resolver = resolver

    def ask(self, name: str, kind: Kind) -> Answer:
        """The records of `name`; every way DNS can fail is a `failure` sentence."""
        import dns.exception
        import dns.resolver

        if self._resolver is None or self._timeouts >= MAX_TIMEOUTS:
            return Answer(name, kind, failure=self._problem)
        try:
            answer = self._resolver.resolve(name, kind, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Answer(name, kind)
        except dns.resolver.NoNameservers as exc:
            return Answer(name, kind, failure=_refused(exc))
        except dns.exception.Timeout:
            self._timeouts += 1
            self._problem = _("the DNS server did not answer in time")
            return Answer(name, kind, failure=self._problem)
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            return Answer(
                name,
                kind,
                failure=_("DNS could not be asked ({name__})").format(name__=type(exc).__name__),
            )
        rrset = answer.rrset
        if rrset is None:
            return Answer(name, kind)
        if len(rrset) > MAX_RECORDS:
            return Answer(
                name,
                kind,
                failure=_("the DNS server sent {count} records, far too many").format(
                    count=len(rrset)
                ),
            )
        return Answer(name, kind, tuple(_text(kind, item) for item in rrset))


def _refused(exc: Exception) -> str:
    """SERVFAIL, REFUSED and the like, in words (dnspython lists each server's error)."""
    text = str(exc)
    for code in ("SERVFAIL", "REFUSED", "FORMERR", "NOTIMP"):
        if code in text:
            return _("the DNS server answered {code}").format(code=code)
    return _("no DNS server could answer")


def _text(kind: Kind, item: object) -> str:
    """One record as printable text: bytes that are no ASCII text are shown escaped."""
    if kind == "TXT":
        strings: Sequence[bytes] = getattr(item, "strings", ())
        return _printable(b"".join(strings))
    if kind == "MX":
        preference = getattr(item, "preference", 0)
        exchange = str(getattr(item, "exchange", "")).rstrip(".") or "."
        return f"{preference} {_printable(exchange.encode('utf-8', 'replace'))}"
    target = str(getattr(item, "target", "")).rstrip(".")
    return _printable(target.encode("utf-8", "replace")).lower()


def _printable(raw: bytes) -> str:
    text = raw.decode("ascii", "backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
