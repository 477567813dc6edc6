"""A small authoritative-and-recursive DNS server on 127.0.0.1 (UDP and TCP) for `doctor --dns`.

It serves the records of a table the test can change at any time, follows CNAMEs inside the
table as a recursive resolver would, truncates UDP answers over 512 bytes (so a huge TXT record
is fetched again over TCP, as in the wild) and can misbehave on purpose:

with running_dns_server() as dns:
    dns.zone = {("smakom.se", "TXT"): ["v=spf1 include:spf.protection.outlook.com -all"]}
    dns.broken = {"smakom.se": "servfail"}   # or "timeout", "refused"
    ... smakom doctor --dns dns.address ...
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dnslib import CNAME, MX, QTYPE, RCODE, RR, TXT, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

HOST = "127.0.0.1"
TTL = 60
UDP_LIMIT = 512
# How a name may misbehave: no answer at all, or an error code in place of the records.
BEHAVIOURS = ("timeout", "servfail", "refused")

Zone = Mapping[tuple[str, str], Sequence[str]]


def txt(value: str) -> list[str]:
    """A TXT value as one record of strings of at most 255 bytes (RFC 1035 §3.3.14)."""
    return [value[i : i + 255] for i in range(0, len(value), 255)] or [""]


@dataclass
class _Table(BaseResolver):  # type: ignore[misc]  # dnslib has no type hints
    zone: Zone = field(default_factory=dict)
    broken: Mapping[str, str] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def resolve(self, request: Any, handler: Any) -> Any:
        question = request.q
        name = str(question.qname).rstrip(".").lower()
        kind = QTYPE[question.qtype]
        self.asked.append((name, kind))
        reply = request.reply()
        behaviour = self.broken.get(name)
        if behaviour == "timeout":
            raise DNSError("no answer, on purpose")  # dnslib then sends nothing
        if behaviour in ("servfail", "refused"):
            reply.header.rcode = RCODE.SERVFAIL if behaviour == "servfail" else RCODE.REFUSED
            return reply
        for _hop in range(8):
            targets = self.zone.get((name, "CNAME"))
            if kind == "CNAME" or not targets:
                break
            reply.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(targets[0]), ttl=TTL))
            name = targets[0].rstrip(".").lower()
        for value in self.zone.get((name, kind), ()):
            reply.add_answer(RR(name, getattr(QTYPE, kind), rdata=_rdata(kind, value), ttl=TTL))
        if not reply.rr and not any(known == name for known, _kind in self.zone):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def _rdata(kind: str, value: str) -> Any:
    if kind == "TXT":
        return TXT(txt(value))
    if kind == "CNAME":
        return CNAME(value)
    if kind == "MX":
        preference, _, host = value.partition(" ")
        return MX(host, int(preference))
    raise ValueError(f"the test DNS server does not serve {kind} records")


class _Handler(DNSHandler):  # type: ignore[misc]
    """Truncates UDP answers over 512 bytes like a classic server, so a long one goes over TCP.

    dnslib's own truncation drops the question, which resolvers rightly refuse to read.
    """

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        packed: bytes = reply.pack()
        if self.protocol == "udp" and len(packed) > UDP_LIMIT:
            truncated = request.reply()
            truncated.header.tc = 1
            packed = truncated.pack()
        return packed


@dataclass
class DnsTestServer:
    table: _Table
    port: int

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def zone(self) -> Zone:
        return self.table.zone

    @zone.setter
    def zone(self, zone: Zone) -> None:
        self.table.zone = zone

    @property
    def broken(self) -> Mapping[str, str]:
        return self.table.broken

    @broken.setter
    def broken(self, broken: Mapping[str, str]) -> None:
        self.table.broken = broken

    @property
    def asked(self) -> list[tuple[str, str]]:
        return self.table.asked


def _free_port() -> int:
    """A port free for UDP and TCP alike on 127.0.0.1."""
    for _attempt in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


@contextmanager
def running_dns_server(zone: Zone | None = None) -> Iterator[DnsTestServer]:
    """The server on 127.0.0.1, UDP and TCP on one port, until the block ends."""
    table = _Table(zone=dict(zone or {}))
    port = _free_port()
    servers = [
        DNSServer(table, address=HOST, port=port, tcp=tcp, handler=_Handler, logger=_Quiet())
        for tcp in (False, True)
    ]
    for server in servers:
        server.start_thread()
    try:
        yield DnsTestServer(table, port)
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()


class _Quiet:
    """dnslib logs every packet to standard output by default."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None
