"""The sending engine against a real SMTP server (aiosmtpd with STARTTLS and AUTH)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smakom_cli.config import SmtpConfig
from smakom_cli.delivery.journal import Journal, JournalHeader
from smakom_cli.delivery.outcome import Outcome
from smakom_cli.delivery.sender import (
    Failure,
    Outgoing,
    ProgressEvent,
    SendReport,
    send_messages,
)
from smakom_cli.delivery.smtp import check_login
from smakom_cli.errors import SmakomError
from smakom_cli.signin.resolver import Login
from tests.smtp_server import Certificates, SmtpTestServer

SENDER = "nyhetsbrev@smakom.se"
ADDRESSES = [f"mottagare{n}@kommun{n}.se" for n in range(6)]


def outgoing(addresses: Iterable[str]) -> Iterator[Outgoing]:
    """Messages built lazily, as the real send builds them."""
    for address in addresses:
        message = (
            f"From: {SENDER}\r\nTo: {address}\r\nSubject: Nyhetsbrev januari\r\n\r\n"
            "Hej!\r\n.En rad som börjar med punkt.\r\n"
        ).encode()
        yield Outgoing(address.lower(), address, message)


def login_for(server: SmtpTestServer, password: str | None = None) -> Login:
    return Login(server.username, password or server.password)


HEADER = JournalHeader("2021-01", "Nyhetsbrev januari", "f" * 64)


def open_journal(path: Path) -> Journal:
    return Journal.open(path, HEADER, list_name="subscribers.csv")


def send(
    server: SmtpTestServer,
    addresses: Iterable[str] = ADDRESSES,
    *,
    smtp: SmtpConfig | None = None,
    journal: Journal | None = None,
    is_suppressed: Callable[[str], bool] = lambda _key: False,
    **options: Any,
) -> SendReport:
    return send_messages(
        outgoing(addresses),
        smtp or server.config(),
        envelope_from=SENDER,
        login=lambda: login_for(server),
        journal=journal,
        is_suppressed=is_suppressed,
        **options,
    )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with open_journal(tmp_path / "sent" / "2021-01.jsonl") as journal:
        yield journal


def test_sends_every_message_once_over_one_connection(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """Each recipient gets one message, all over one logged-in connection, journalled."""
    report = send(smtp_server, journal=journal)

    assert report == SendReport(
        sent=6, failed=(), retried=0, skipped=0, uncertain=(), interrupted=False
    )
    assert report.complete
    assert smtp_server.recipients() == ADDRESSES
    assert (smtp_server.connections, smtp_server.auth_attempts) == (1, 1)
    assert smtp_server.messages[0].envelope_from == SENDER
    assert b"\r\n.En rad som b" in smtp_server.messages[0].data
    assert journal.done == frozenset(ADDRESSES)
    assert journal.state.completed


def test_messages_are_built_in_the_calling_thread(smtp_server: SmtpTestServer) -> None:
    """The iterator runs in the caller's thread, so building overlaps sending safely."""
    threads = set()

    def built() -> Iterator[Outgoing]:
        for message in outgoing(ADDRESSES):
            threads.add(threading.current_thread())
            yield message

    send_messages(
        built(),
        smtp_server.config(),
        envelope_from=SENDER,
        login=lambda: login_for(smtp_server),
        journal=None,
        is_suppressed=lambda _key: False,
    )

    assert threads == {threading.current_thread()}


def test_implicit_tls_server(smtp_server_tls: SmtpTestServer) -> None:
    """security = "tls" speaks TLS from the first byte (port 465 style)."""
    report = send(smtp_server_tls)

    assert report.complete
    assert smtp_server_tls.recipients() == ADDRESSES


def test_greylisted_recipient_is_retried_and_gets_one_message(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """A 451 is retried after a back-off while the others go on; delivered once."""
    smtp_server.faults.greylist.add(ADDRESSES[1])
    progress: list[ProgressEvent] = []

    smtp = smtp_server.config(retry_delay=0.3)  # long enough for the others to go first
    report = send(smtp_server, smtp=smtp, journal=journal, on_progress=progress.append)

    assert (report.sent, report.retried, report.failed) == (6, 1, ())
    assert sorted(smtp_server.recipients()) == sorted(ADDRESSES)
    assert smtp_server.recipients()[-1] == ADDRESSES[1]  # the others did not wait for it
    reply = "451 4.7.1 Greylisted, please try again later"
    assert ProgressEvent(Outcome.DEFERRED, ADDRESSES[1], reply, final=False) in progress
    assert journal.state.completed


def test_rejected_recipient_is_a_failure_and_the_run_goes_on(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """A 550 fails that recipient for good, with the server's reply; the others get theirs."""
    smtp_server.faults.reject.add(ADDRESSES[2])

    report = send(smtp_server, journal=journal)

    reply = f"550 5.1.1 <{ADDRESSES[2]}>: Recipient address rejected: User unknown"
    assert report.failed == (Failure(ADDRESSES[2], reply),)
    assert report.sent == 5
    assert not report.complete
    assert smtp_server.recipients() == ADDRESSES[:2] + ADDRESSES[3:]
    assert journal.state.failed == {ADDRESSES[2]: reply}
    assert ADDRESSES[2] in journal.done
    assert not journal.state.completed


def test_temporary_failure_that_persists_stays_temporary(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """A 4xx on every try is deferred after retry_attempts retries, never failed for good:
    the journal keeps it waiting for the next run."""
    smtp_server.faults.tempfail.add(ADDRESSES[0])

    report = send(smtp_server, smtp=smtp_server.config(retry_attempts=2), journal=journal)

    assert report.deferred == (Failure(ADDRESSES[0], "452 4.2.2 Mailbox full"),)
    assert (report.sent, report.retried, report.failed, report.complete) == (5, 2, (), False)
    assert journal.state.deferred == {ADDRESSES[0]: "452 4.2.2 Mailbox full"}
    assert ADDRESSES[0] not in journal.done
    assert not journal.state.completed


def test_connection_dropped_after_some_messages_is_reopened(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """The server closing the connection costs a reconnect, not a message or a duplicate."""
    smtp_server.faults.drop_after = 2

    report = send(smtp_server, journal=journal)

    assert (report.sent, report.retried, report.failed) == (6, 1, ())
    assert sorted(smtp_server.recipients()) == sorted(ADDRESSES)
    assert smtp_server.connections == 2
    assert journal.done == frozenset(ADDRESSES)


def test_421_reopens_the_connection_and_retries(smtp_server: SmtpTestServer) -> None:
    """A 421 (server shutting down) is retried on a new connection, delivered once."""
    smtp_server.faults.reply_421_after = 3

    report = send(smtp_server)

    assert (report.sent, report.retried, report.failed) == (6, 1, ())
    assert sorted(smtp_server.recipients()) == sorted(ADDRESSES)
    assert smtp_server.connections == 2


def test_connection_lost_after_the_message_is_uncertain_and_not_resent(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """No answer to the end of DATA: the message may have arrived, so it is not sent again."""
    smtp_server.faults.vanish_after_data.add(ADDRESSES[3])

    report = send(smtp_server, journal=journal)

    assert report.uncertain == (ADDRESSES[3],)
    assert (report.sent, report.complete) == (5, False)
    assert sorted(smtp_server.recipients()) == sorted(ADDRESSES)
    assert journal.uncertain == {ADDRESSES[3]}
    assert not journal.state.completed


def test_server_that_keeps_closing_stops_the_run(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """A 421 on every try ends the run with one sentence instead of looping; nothing is lost."""
    smtp_server.faults.unavailable = True

    report = send(smtp_server, journal=journal)

    assert "keeps closing the connection" in report.stopped_by
    assert smtp_server.connections == 3
    assert journal.done == frozenset()  # the next run sends to everyone
    assert journal.uncertain == frozenset()


def test_refused_sender_stops_the_run(smtp_server: SmtpTestServer, journal: Journal) -> None:
    """A 5xx to MAIL FROM concerns every message: stop, rather than fail every recipient."""
    smtp_server.faults.reject.add(SENDER)

    report = send(smtp_server, journal=journal)

    assert "refused the sender address nyhetsbrev@smakom.se" in report.stopped_by
    assert journal.done == frozenset()
    assert journal.uncertain == frozenset()


def test_server_down_at_start(
    smtp_server: SmtpTestServer, closed_smtp_port: int, journal: Journal
) -> None:
    """Nothing listening: one sentence naming host and port; nothing built or journalled."""
    built: list[Outgoing] = []

    def messages() -> Iterator[Outgoing]:
        for message in outgoing(ADDRESSES):
            built.append(message)
            yield message

    with pytest.raises(SmakomError) as caught:
        send_messages(
            messages(),
            smtp_server.config(port=closed_smtp_port),
            envelope_from=SENDER,
            login=lambda: login_for(smtp_server),
            journal=journal,
            is_suppressed=lambda _key: False,
        )

    assert str(caught.value) == (
        f"Could not connect to 127.0.0.1:{closed_smtp_port}: Connection refused. "
        "Check [smtp] host and port in smakom.toml."
    )
    assert built == []
    assert journal.done == journal.uncertain == frozenset()


def test_wrong_password_stops_at_once(smtp_server: SmtpTestServer, journal: Journal) -> None:
    """A refused login is one attempt and one sentence; nothing is sent or journalled."""
    wrong = "fel-lösenord"

    with pytest.raises(SmakomError, match=r"refused the login for kansli@smakom\.se") as caught:
        send_messages(
            outgoing(ADDRESSES),
            smtp_server.config(),
            envelope_from=SENDER,
            login=lambda: Login(smtp_server.username, wrong),
            journal=journal,
            is_suppressed=lambda _key: False,
        )

    assert "smakom login" in str(caught.value)
    assert wrong not in str(caught.value)
    assert smtp_server.auth_attempts == 1
    assert smtp_server.messages == []
    assert journal.done == journal.uncertain == frozenset()


def test_certificate_that_does_not_verify(
    smtp_server: SmtpTestServer, smtp_certificates: Certificates
) -> None:
    """A server certificate from another CA stops the send and points at ca_file."""
    smtp = smtp_server.config(ca_file=str(smtp_certificates.other_ca_file))

    with pytest.raises(SmakomError, match=r"certificate of 127\.0\.0\.1:\d+ could not be verified"):
        send(smtp_server, smtp=smtp)

    with pytest.raises(SmakomError, match="ca_file"):
        check_login(smtp, login_for(smtp_server))
    assert smtp_server.auth_attempts == 0


def test_plain_smtp_is_refused_to_a_remote_host() -> None:
    """security = "none" to anything but localhost is refused before connecting."""
    smtp = SmtpConfig(host="smtp.example.org", security="none", username="")

    with pytest.raises(SmakomError, match="only allowed for localhost"):
        check_login(smtp, None)


def test_missing_password_is_a_clear_error(smtp_server: SmtpTestServer) -> None:
    """A configured username with no password says to run `smakom login`."""
    with pytest.raises(SmakomError, match="smakom login"):
        check_login(smtp_server.config(), None)


def test_check_login_logs_in_without_sending(smtp_server: SmtpTestServer) -> None:
    """check_login connects, secures and authenticates, and sends nothing."""
    check_login(smtp_server.config(), login_for(smtp_server))

    assert (smtp_server.connections, smtp_server.auth_attempts) == (1, 1)
    assert smtp_server.messages == []


def test_two_connections_deliver_each_message_once(smtp_server: SmtpTestServer) -> None:
    """With connections = 2 both are used, and nobody gets a message twice."""
    addresses = [f"person{n}@kommun.se" for n in range(40)]

    report = send(smtp_server, addresses, smtp=smtp_server.config(connections=2))

    assert (report.sent, report.complete) == (40, True)
    assert sorted(smtp_server.recipients()) == sorted(addresses)
    assert smtp_server.connections == 2


class FakeClock:
    """Time that passes only in `sleep`; a sleeper wakes `seconds` after it last looked.

    Waking relative to each thread's own last look makes two connections waiting for the
    same turn wake together, as they would in real time.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()
        self._looked = threading.local()

    def __call__(self) -> float:
        with self._lock:
            self._looked.at = self.now
            return self.now

    def last_looked(self) -> float:
        """When this thread last read the clock: for a sender worker, its message's start."""
        return float(self._looked.at)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now = max(self.now, self._looked.at + seconds)


@pytest.mark.parametrize("connections", [1, 2])
def test_rate_limits_hold_in_every_window(smtp_server: SmtpTestServer, connections: int) -> None:
    """No 60-s window has more than rate_per_minute starts, no hour more than rate_per_hour."""
    clock = FakeClock()
    starts: list[float] = []

    def is_suppressed(_key: str) -> bool:  # asked right after the rate limit gave the turn
        starts.append(clock.last_looked())
        return False

    smtp = smtp_server.config(rate_per_minute=2, rate_per_hour=5, connections=connections)
    report = send(
        smtp_server,
        [*ADDRESSES, "sjunde@kommun.se"],
        smtp=smtp,
        is_suppressed=is_suppressed,
        clock=clock,
        sleep=clock.sleep,
    )

    assert report.sent == 7
    starts.sort()
    assert all(later - earlier >= 60 for earlier, later in zip(starts, starts[2:], strict=False))
    assert all(later - earlier >= 3600 for earlier, later in zip(starts, starts[5:], strict=False))
    assert starts[-1] - starts[0] == pytest.approx(3600)  # and no slower than that


def test_address_unsubscribed_during_the_send_is_not_mailed(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """Suppression is checked right before each message, not once at the start."""
    unsubscribed: set[str] = set()

    def unsubscribe_last_on_first_send(event: ProgressEvent) -> None:
        unsubscribed.add(ADDRESSES[-1])

    report = send(
        smtp_server,
        journal=journal,
        is_suppressed=unsubscribed.__contains__,
        on_progress=unsubscribe_last_on_first_send,
    )

    assert (report.sent, report.skipped) == (5, 1)
    assert smtp_server.recipients() == ADDRESSES[:-1]
    assert ADDRESSES[-1] not in journal.done


def test_stop_finishes_the_message_in_progress_and_resume_sends_the_rest(
    smtp_server: SmtpTestServer, tmp_path: Path
) -> None:
    """Stop ends the run early with nothing uncertain; a second run sends only the rest."""
    stop = threading.Event()
    path = tmp_path / "2021-01.jsonl"

    def stop_after_two(event: ProgressEvent) -> None:
        if event.outcome == Outcome.SENT and len(smtp_server.messages) >= 2:
            stop.set()

    with open_journal(path) as journal:
        first = send(smtp_server, journal=journal, on_progress=stop_after_two, stop=stop)
    with open_journal(path) as journal:
        assert journal.done == frozenset(smtp_server.recipients())
        rest = [address for address in ADDRESSES if address not in journal.done]
        second = send(smtp_server, rest, journal=journal)
        assert journal.state.completed

    assert first.interrupted
    assert (first.uncertain, first.complete) == ((), False)
    assert 2 <= first.sent < len(ADDRESSES)
    assert second.complete
    assert first.sent + second.sent == len(ADDRESSES)
    assert sorted(smtp_server.recipients()) == sorted(ADDRESSES)


def test_ctrl_c_while_building_a_message_interrupts_cleanly(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """KeyboardInterrupt in the calling thread is a stop too: a report, not a traceback."""

    def interrupted() -> Iterator[Outgoing]:
        yield from outgoing(ADDRESSES[:2])
        raise KeyboardInterrupt

    report = send_messages(
        interrupted(),
        smtp_server.config(),
        envelope_from=SENDER,
        login=lambda: login_for(smtp_server),
        journal=journal,
        is_suppressed=lambda _key: False,
    )

    assert (report.interrupted, report.sent, report.uncertain) == (True, 2, ())
    assert journal.done == frozenset(ADDRESSES[:2])


def test_international_address_goes_with_smtputf8(smtp_server: SmtpTestServer) -> None:
    """An address with å is sent with SMTPUTF8 when the server offers it."""
    report = send(smtp_server, ["åsa.öberg@kommun.se"])

    assert report.complete
    assert smtp_server.recipients() == ["åsa.öberg@kommun.se"]
