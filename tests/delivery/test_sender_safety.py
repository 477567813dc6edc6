"""The sender's safety nets against a real SMTP server: AUTH LOGIN, back-off, idle connections."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smakom_cli.delivery.journal import Journal
from smakom_cli.delivery.outcome import Outcome
from smakom_cli.delivery.sender import Outgoing, ProgressEvent, SendReport, send_messages
from smakom_cli.errors import SmakomError
from smakom_cli.signin.resolver import Login
from tests.delivery.test_sender import ADDRESSES, SENDER, open_journal, outgoing
from tests.smtp_server import Certificates, SmtpTestServer, running_server

ONLY_LOGIN = ("PLAIN", "XOAUTH2")


def send(
    server: SmtpTestServer,
    messages: Iterable[Outgoing] | None = None,
    *,
    password: str | None = None,
    journal: Journal | None = None,
    smtp: dict[str, Any] | None = None,
    **options: Any,
) -> SendReport:
    """Send `messages` (one to each of ADDRESSES by default) with the server's [smtp]
    settings, changed by `smtp`."""
    return send_messages(
        outgoing(ADDRESSES) if messages is None else messages,
        server.config(**(smtp or {})),
        envelope_from=SENDER,
        login=lambda: Login(server.username, password or server.password),
        journal=journal,
        is_suppressed=lambda _key: False,
        **options,
    )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with open_journal(tmp_path / "sent" / "2021-01.jsonl") as journal:
        yield journal


def test_a_server_offering_only_auth_login_is_logged_into(
    smtp_certificates: Certificates,
) -> None:
    """A server that offers AUTH LOGIN but not PLAIN still takes the password (with å and
    Å in it) in one attempt, and every message goes."""
    with running_server(smtp_certificates, auth_exclude=ONLY_LOGIN) as server:
        report = send(server)

    assert report.complete
    assert server.recipients() == ADDRESSES
    assert server.auth_attempts == 1


def test_a_wrong_password_over_auth_login_is_one_attempt(
    smtp_certificates: Certificates,
) -> None:
    """Over AUTH LOGIN too, a refused password is tried once (no lock-out) and never shown."""
    with (
        running_server(smtp_certificates, auth_exclude=ONLY_LOGIN) as server,
        pytest.raises(SmakomError, match="refused the login") as caught,
    ):
        send(server, password="fel-lösenord")

    assert "fel-lösenord" not in str(caught.value)
    assert server.auth_attempts == 1
    assert server.messages == []


def test_a_server_offering_no_password_login_is_one_clear_sentence(
    smtp_certificates: Certificates,
) -> None:
    """A server that offers neither PLAIN nor LOGIN (only OAuth2 here) is refused before any
    password is sent, in a sentence naming what it offers and what smakom uses."""
    with running_server(smtp_certificates, auth_exclude=("PLAIN", "LOGIN")) as server:
        with pytest.raises(SmakomError, match=r"it offers XOAUTH2; smakom uses PLAIN or LOGIN"):
            send(server)
        assert server.auth_attempts == 0
        assert server.messages == []


def test_reconnects_after_a_drop_wait_longer_each_time(
    smtp_certificates: Certificates, journal: Journal
) -> None:
    """When the server drops the connection and then turns new connections away (421 at
    the greeting), smakom waits retry_delay, then twice that, before it gets back in; every
    message arrives once."""
    with running_server(smtp_certificates) as server:
        server.faults.drop_after = 2
        server.faults.busy_connections = {2, 3}
        report = send(server, smtp={"retry_delay": 0.2}, journal=journal)

    assert report.complete
    assert sorted(server.recipients()) == sorted(ADDRESSES)
    assert journal.done == frozenset(ADDRESSES)
    assert server.connections == 4
    _, busy, again, back_in = server.handler.connected_at
    # Lower bounds only, with a margin for the clock: a loaded machine only adds time.
    assert again - busy >= 0.18
    assert back_in - again >= 0.36


def test_a_server_closing_with_421_is_not_reconnected_to_at_once_again(
    smtp_certificates: Certificates, journal: Journal
) -> None:
    """A server that answers 421 ("try again later") and closes, connection after connection:
    the first reconnect is at once, the next ones wait retry_delay and then twice that, and
    then the run stops with nothing lost."""
    with running_server(smtp_certificates) as server:
        server.faults.unavailable = True
        report = send(server, smtp={"retry_delay": 0.2}, journal=journal)

    assert "keeps closing the connection" in report.stopped_by
    _, second, third = server.handler.connected_at
    assert third - second >= 0.18  # lower bounds only: a loaded machine only adds time
    assert journal.done == frozenset()
    assert journal.uncertain == frozenset()


def test_a_server_that_keeps_turning_connections_away_stops_the_run(
    smtp_certificates: Certificates, journal: Journal
) -> None:
    """After retry_attempts reconnects that are all turned away, the run stops with the
    server's reply; what was sent is kept, the rest goes next run, nobody is uncertain."""
    with running_server(smtp_certificates) as server:
        server.faults.drop_after = 2
        server.faults.busy_connections = set(range(2, 100))
        started = time.monotonic()
        smtp = {"retry_attempts": 2, "retry_delay": 0.1}
        report = send(server, smtp=smtp, journal=journal)
        took = time.monotonic() - started

    assert "421 4.7.0 Too many connections" in report.stopped_by
    assert not report.complete
    assert report.sent == 2
    assert server.connections == 1 + 3  # the first, then one try and two retries
    assert took >= 0.9 * (0.1 + 0.2)
    assert journal.done == frozenset(ADDRESSES[:2])
    assert journal.uncertain == frozenset()


def test_an_idle_connection_the_server_closed_is_noticed_before_use(
    smtp_certificates: Certificates, journal: Journal
) -> None:
    """A connection left idle (the next message was slow to come) that the server has
    closed meanwhile is found out with NOOP and replaced: no retry, no failure, and the
    message arrives exactly once."""

    def slow() -> Iterator[Outgoing]:
        messages = outgoing(ADDRESSES[:2])
        yield next(messages)
        time.sleep(3.5)  # well past the server's idle timeout
        yield from messages

    progress: list[ProgressEvent] = []
    with running_server(smtp_certificates, idle_timeout=1.5) as server:
        report = send(
            server, slow(), journal=journal, on_progress=progress.append, idle_seconds=0.1
        )

    assert report.complete
    assert report.retried == 0
    assert not [event for event in progress if event.outcome != Outcome.SENT]
    assert server.recipients() == ADDRESSES[:2]
    assert server.connections == 2
    assert journal.done == frozenset(ADDRESSES[:2])
