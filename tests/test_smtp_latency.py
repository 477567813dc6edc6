"""An SMTP connection does not hold back small writes (the final "." of each message)."""

from __future__ import annotations

import socket

from smakom_cli.smtp import Login, connect, hang_up

from .smtp_server import SmtpTestServer


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
