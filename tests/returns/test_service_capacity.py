"""`smakom serve` keeps answering while hundreds of connections idle or trickle their bodies.

Real sockets against the real service on 127.0.0.1; every loop is bounded and stops with
the test. Waitress's defaults (100 connections, 120 s before a silent one is dropped) were
locked out by about 100 such connections for minutes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from smakom_cli.audience.unsubscribe_links import make_token
from smakom_cli.returns.server import Capacity, capacity
from tests.service_server import (
    HOST,
    SECRET,
    RunningService,
    gmail_post,
    request,
    running_service,
)

IDLE = 300
TRICKLING = 100
ANSWER_WITHIN = 2.0


@contextmanager
def trickling(service: RunningService, count: int) -> Iterator[list[socket.socket]]:
    """`count` POSTs that send their headers, then one byte of the body every half second."""
    link = service.link(make_token(SECRET.encode(), "trickle@example.com"))
    path = link.removeprefix(service.base)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\nL"
    ).encode()
    sockets = [socket.create_connection((HOST, service.port), timeout=5) for _ in range(count)]
    stop = threading.Event()

    def drip() -> None:
        # At most 20 bytes each: the 26-byte body is never completed, nothing is recorded.
        for byte in b"ist-Unsubscribe=One-"[:20]:
            if stop.wait(0.5):
                return
            for sock in sockets:
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    return

    for sock in sockets:
        sock.sendall(head)
    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        yield sockets
    finally:
        stop.set()
        dripper.join(timeout=5)
        for sock in sockets:
            sock.close()


def timed(action: object) -> float:
    assert callable(action)
    started = time.monotonic()
    action()
    return time.monotonic() - started


def test_idle_and_trickling_connections_do_not_lock_anyone_out(tmp_path: Path) -> None:
    """300 idle and 100 trickling connections open: a health check and a one-click are still
    answered within 2 s, and the one-click is recorded."""
    with running_service(tmp_path / "service.sqlite3") as service, ExitStack() as stack:
        for _ in range(IDLE):
            stack.enter_context(socket.create_connection((HOST, service.port), timeout=5))
        stack.enter_context(trickling(service, TRICKLING))
        # Let the service take every one of them in before asking.
        time.sleep(0.5)

        def health() -> None:
            assert request("GET", f"{service.base}/smakom/health", timeout=5).body == b"ok\n"

        def one_click() -> None:
            link = service.link(make_token(SECRET.encode(), "heard@example.com"))
            assert gmail_post(link).status == 200

        assert timed(health) < ANSWER_WITHIN
        assert timed(one_click) < ANSWER_WITHIN
        assert len(service.events()) == 1


def test_a_silent_connection_is_closed_after_the_idle_timeout(tmp_path: Path) -> None:
    """--idle-timeout 1: a connection that sends nothing is closed within about 2 s."""
    with (
        running_service(tmp_path / "service.sqlite3", args=["--idle-timeout", "1"]) as service,
        socket.create_connection((HOST, service.port), timeout=5) as silent,
    ):
        started = time.monotonic()
        assert silent.recv(1) == b""
        assert time.monotonic() - started < 4


def test_the_connection_limit_fits_the_open_file_limit() -> None:
    """What docs/service.md promises: 1,000 where the files allow, 984 under a hard 1,024 with
    8 threads (and says why), at most 500 on Windows."""
    assert capacity(1000, 15, 8, 524_288) == Capacity(1000, 15, 8)
    assert capacity(1000, 15, 8, None) == Capacity(1000, 15, 8)
    limited = capacity(1000, 15, 8, 1024)
    assert limited.connections == 984
    assert "open-file limit of 1024" in limited.limited_by
    assert capacity(1000, 15, 8, None, windows=True).connections == 500
