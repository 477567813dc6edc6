"""An SMTP connection sends fast: no small write held back, dots stuffed without a regex."""

from __future__ import annotations

import re
import socket

from hypothesis import given
from hypothesis import strategies as st

from smakom_cli.delivery.smtp import connect, data_body, hang_up
from smakom_cli.signin.resolver import Login
from tests.smtp_server import SmtpTestServer


def test_a_connection_sends_the_final_dot_without_waiting_for_an_ack(
    smtp_server: SmtpTestServer, smtp_server_tls: SmtpTestServer
) -> None:
    """Nagle's algorithm is off on STARTTLS and TLS connections alike: without that, each
    message waited about 40 ms for the server's delayed ACK, some 20 messages a second."""
    for server in (smtp_server, smtp_server_tls):
        connection = connect(server.config(), Login(server.username, server.password))
        try:
            assert connection.sock is not None
            assert connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            hang_up(connection)


@given(st.lists(st.sampled_from([b".", b"..", b"a", b"\r\n", b"\n", b"\r", b"x.y"]), max_size=30))
def test_dot_stuffing_doubles_exactly_the_dots_that_start_a_line(parts: list[bytes]) -> None:
    """A line of the message that starts with "." arrives as written (RFC 5321 4.5.2)."""
    message = b"".join(parts)
    expected = re.sub(rb"(?m)^\.", b"..", message)
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert data_body(message) == expected
