"""Handing built messages to the SMTP server: reused connections, a rate limit, retries.

The calling thread pulls messages from the caller's (lazy) iterator, so building the next
message overlaps the network, and hands them to one worker thread per connection. Workers
write the journal around each message; the calling thread keeps the tally, schedules retries
and reports progress. A fault that concerns one recipient (a 5xx reply, retries running out)
is recorded and the run goes on; a fault that concerns every message (no connection, a refused
password, an unverifiable certificate, a refused sender) stops the run with one sentence.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import queue
import re
import smtplib
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Literal

from smakom_cli.config import SmtpConfig
from smakom_cli.errors import SmakomError
from smakom_cli.journal import Journal

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# The calling thread never blocks longer than this, so a Ctrl-C (which only sets `stop`, and
# on Windows does not wake a blocked wait) is noticed promptly.
_POLL_SECONDS = 0.25
# A server that closes the connection this many times in a row with no message getting
# through in between will not take the message: stop rather than loop.
_MAX_DROPS_IN_A_ROW = 3
# Retry delays double from retry_delay up to this many times retry_delay.
_MAX_BACKOFF_FACTOR = 10
# A connection unused for this long (e.g. while the rate limit waits) is checked with NOOP
# before use: servers close idle connections, and that is no reason to count a failure.
_IDLE_SECONDS = 10.0

ProgressKind = Literal["sent", "failed", "retry", "skipped", "uncertain"]


@dataclass(frozen=True)
class Outgoing:
    """One message ready to go: CRLF line endings, every header in place."""

    key: str
    envelope_to: str
    message: bytes


@dataclass(frozen=True)
class Failure:
    """A recipient the server refused for good, with its reply (e.g. "550 5.1.1 no such user")."""

    key: str
    reply: str


@dataclass(frozen=True)
class ProgressEvent:
    """One outcome, reported from the calling thread as it happens."""

    kind: ProgressKind
    key: str
    reply: str = ""


@dataclass(frozen=True)
class SendReport:
    """What a run did; `skipped` were unsubscribed while it ran."""

    sent: int
    failed: tuple[Failure, ...]
    retried: int
    skipped: int
    uncertain: tuple[str, ...]
    interrupted: bool

    @property
    def complete(self) -> bool:
        """Every message went out: none failed, none uncertain, not interrupted."""
        return not (self.failed or self.uncertain or self.interrupted)


class _Unreachable(SmakomError):
    """Connecting failed in a way that may pass (refused, closed, 4xx greeting)."""


def check_login(smtp: SmtpConfig, password: str | None) -> None:
    """Connect, secure the connection and log in exactly as a send would, then leave."""
    _hang_up(_connect(smtp, password))


def send_messages(
    outgoing: Iterable[Outgoing],
    smtp: SmtpConfig,
    *,
    envelope_from: str,
    password: str | None,
    journal: Journal | None,
    is_suppressed: Callable[[str], bool],
    on_progress: Callable[[ProgressEvent], None] = lambda _event: None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
) -> SendReport:
    """Send every message once; returns early, interrupted, when `stop` is set or on Ctrl-C.

    `is_suppressed` is asked right before each message (serialised, from the worker
    threads); `on_progress` is called from the calling thread only. `clock` and `sleep`
    exist for tests of the rate limit; without `sleep`, waits end as soon as the run stops.
    When every message went out, the journal is marked complete.
    """
    # Fail before a message is built or journalled if the server cannot be used at all.
    first = _connect(smtp, password)
    shared = _Shared(
        smtp=smtp,
        envelope_from=envelope_from,
        password=password,
        journal=journal,
        is_suppressed=is_suppressed,
        clock=clock,
        sleep=sleep,
    )
    workers = [_Worker(shared, first if n == 0 else None) for n in range(smtp.connections)]
    for worker in workers:
        worker.start()
    dispatcher = _Dispatcher(shared, on_progress, stop)
    try:
        finished = dispatcher.feed(iter(outgoing))
    finally:
        # Workers finish the message in hand, give back the others unsent, and hang up.
        shared.halt.set()
        for _ in workers:
            shared.work.put(None)
        for worker in workers:
            worker.join()
    dispatcher.drain()
    report = dispatcher.report(interrupted=not finished)
    if journal is not None and report.complete and not journal.uncertain:
        journal.mark_complete()
    return report


@dataclass(frozen=True)
class _Item:
    outgoing: Outgoing
    attempts: int = 0  # temporary (4xx) refusals so far


_Outcome = Literal[
    "sent", "failed", "deferred", "dropped", "uncertain", "skipped", "unsent", "sender-refused"
]


@dataclass(frozen=True)
class _Result:
    """What a worker did with one item; exactly one per item handed out."""

    item: _Item
    outcome: _Outcome
    reply: str = ""
    error: BaseException | None = None  # ends the run


class _Shared:
    """What the calling thread and the workers share."""

    def __init__(
        self,
        *,
        smtp: SmtpConfig,
        envelope_from: str,
        password: str | None,
        journal: Journal | None,
        is_suppressed: Callable[[str], bool],
        clock: Callable[[], float],
        sleep: Callable[[float], None] | None,
    ) -> None:
        self.smtp = smtp
        self.envelope_from = envelope_from
        self.password = password
        self.journal = journal
        self.clock = clock
        self.halt = threading.Event()
        self.work: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[_Result] = queue.SimpleQueue()
        self.rate = _RateLimit(smtp, clock)
        self._is_suppressed = is_suppressed
        self._suppression_lock = threading.Lock()
        self._sleep = sleep

    def pause(self, seconds: float) -> bool:
        """Wait; False when the run is stopping."""
        if self._sleep is None:
            return not self.halt.wait(seconds)
        self._sleep(seconds)
        return not self.halt.is_set()

    def is_suppressed(self, key: str) -> bool:
        with self._suppression_lock:
            return self._is_suppressed(key)

    def note(self, event: _Outcome | Literal["in-flight"], key: str, reply: str = "") -> None:
        """Write one journal record (proofs have no journal)."""
        journal = self.journal
        if journal is None:
            return
        if event == "in-flight":
            journal.mark_in_flight(key)
        elif event == "sent":
            journal.record_sent(key)
        elif event == "failed":
            journal.record_failed(key, reply)
        elif event == "skipped":
            journal.record_skipped(key)
        else:
            journal.record_deferred(key, reply)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before try number `attempt` + 1: doubling, with a ceiling."""
        delay = self.smtp.retry_delay
        return float(min(delay * 2 ** (attempt - 1), delay * _MAX_BACKOFF_FACTOR))


class _RateLimit:
    """Start times of recent messages on all connections, so no window exceeds its limit."""

    def __init__(self, smtp: SmtpConfig, clock: Callable[[], float]) -> None:
        self._windows = [
            (limit, seconds, deque[float]())
            for limit, seconds in ((smtp.rate_per_minute, 60.0), (smtp.rate_per_hour, 3600.0))
            if limit > 0
        ]
        self._clock = clock
        self._lock = threading.Lock()

    def take_turn(self, pause: Callable[[float], bool]) -> bool:
        """Wait until a message may start and count it as started; False if the run stops."""
        while True:
            with self._lock:
                now = self._clock()
                delay = 0.0
                for limit, seconds, starts in self._windows:
                    while starts and starts[0] + seconds <= now:
                        starts.popleft()
                    if len(starts) >= limit:
                        delay = max(delay, starts[0] + seconds - now)
                if delay <= 0:
                    for _, _, starts in self._windows:
                        starts.append(now)
                    return True
            if not pause(delay):
                return False


class _Dispatcher:
    """The calling thread's side: hands out messages, keeps the tally, schedules retries."""

    def __init__(
        self,
        shared: _Shared,
        on_progress: Callable[[ProgressEvent], None],
        stop: threading.Event | None,
    ) -> None:
        self.shared = shared
        self.on_progress = on_progress
        self.stop = stop
        # Enough handed out to keep every connection busy while the next message is built.
        self.capacity = 2 * shared.smtp.connections
        self.outstanding = 0
        self.retries: list[tuple[float, int, _Item]] = []
        self.order = itertools.count()
        self.sent = 0
        self.failed: list[Failure] = []
        self.retried = 0
        self.skipped = 0
        self.uncertain: list[str] = []
        self.error: BaseException | None = None

    def feed(self, source: Iterator[Outgoing]) -> bool:
        """Hand out messages and take in outcomes until all are done; False if stopped."""
        try:
            return self._feed(source)
        except KeyboardInterrupt:
            return False  # like `stop`: the messages in progress finish, then a report

    def drain(self) -> None:
        """Take the outcomes still queued, once the workers have finished."""
        while True:
            try:
                result = self.shared.results.get_nowait()
            except queue.Empty:
                return
            self._take(result)

    def report(self, *, interrupted: bool) -> SendReport:
        if self.error is not None:
            raise self.error
        return SendReport(
            sent=self.sent,
            failed=tuple(self.failed),
            retried=self.retried,
            skipped=self.skipped,
            uncertain=tuple(self.uncertain),
            interrupted=interrupted,
        )

    def _feed(self, source: Iterator[Outgoing]) -> bool:
        exhausted = False
        while True:
            if self.stop is not None and self.stop.is_set():
                self.shared.halt.set()
            if self.shared.halt.is_set():
                return False
            now = self.shared.clock()
            if self.outstanding < self.capacity:
                if self.retries and self.retries[0][0] <= now:
                    self._hand_out(heapq.heappop(self.retries)[2])
                    continue
                if not exhausted:
                    message = next(source, None)
                    if message is not None:
                        self._hand_out(_Item(message))
                        continue
                    exhausted = True
            if exhausted and not self.retries and not self.outstanding:
                return True
            due_in = self.retries[0][0] - now if self.retries else _POLL_SECONDS
            if self.outstanding:
                self._collect(min(due_in, _POLL_SECONDS))
            else:
                self.shared.pause(min(due_in, _POLL_SECONDS))

    def _hand_out(self, item: _Item) -> None:
        self.shared.work.put(item)
        self.outstanding += 1

    def _collect(self, timeout: float) -> None:
        try:
            result = self.shared.results.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return
        self.outstanding -= 1
        self._take(result)

    def _take(self, result: _Result) -> None:
        key = result.item.outgoing.key
        if result.error is not None and self.error is None:
            self.error = result.error  # the worker has already stopped the run
        if result.outcome == "sent":
            self.sent += 1
            self._progress("sent", key)
        elif result.outcome == "failed":
            self.failed.append(Failure(key, result.reply))
            self._progress("failed", key, result.reply)
        elif result.outcome == "skipped":
            self.skipped += 1
            self._progress("skipped", key)
        elif result.outcome == "uncertain":
            self.uncertain.append(key)
            self._progress("uncertain", key)
        elif result.outcome == "deferred":
            self._retry_later(result.item, result.reply)
        elif result.outcome == "dropped":
            self._retry(result.item, self.shared.clock(), result.reply)

    def _retry_later(self, item: _Item, reply: str) -> None:
        """A 4xx: try again after a back-off, other messages meanwhile; fail when out of tries."""
        attempts = item.attempts + 1
        if attempts > self.shared.smtp.retry_attempts:
            self.shared.note("failed", item.outgoing.key, reply)
            self.failed.append(Failure(item.outgoing.key, reply))
            self._progress("failed", item.outgoing.key, reply)
            return
        due = self.shared.clock() + self.shared.backoff(attempts)
        self._retry(replace(item, attempts=attempts), due, reply)

    def _retry(self, item: _Item, due: float, reply: str) -> None:
        if self.shared.halt.is_set():
            return  # the journal says "deferred": the next run sends it
        heapq.heappush(self.retries, (due, next(self.order), item))
        self.retried += 1
        self._progress("retry", item.outgoing.key, reply)

    def _progress(self, kind: ProgressKind, key: str, reply: str = "") -> None:
        self.on_progress(ProgressEvent(kind, key, reply))


class _Worker(threading.Thread):
    """One connection: takes items, sends each, reopens the connection when it is lost."""

    def __init__(self, shared: _Shared, connection: smtplib.SMTP | None) -> None:
        super().__init__(name="smakom-smtp", daemon=True)
        self.shared = shared
        self.connection = connection
        self.last_used = time.monotonic()  # real time: it is the server's idle timeout
        self.drops_in_a_row = 0

    def run(self) -> None:
        while (item := self.shared.work.get()) is not None:
            result = self._deliver(item)
            if result.error is not None:
                self.shared.halt.set()  # at once, so no connection starts another message
            self.shared.results.put(result)
        if self.connection is not None:
            _hang_up(self.connection)

    def _deliver(self, item: _Item) -> _Result:
        shared = self.shared
        key = item.outgoing.key
        in_flight = False
        try:
            if (
                shared.halt.is_set()
                or not shared.rate.take_turn(shared.pause)
                or not self._connected()
            ):
                return _Result(item, "unsent")
            if shared.is_suppressed(key):
                shared.note("skipped", key)
                return _Result(item, "skipped")
            shared.note("in-flight", key)
            in_flight = True
            outcome, reply = self._transact(item.outgoing)
            self.last_used = time.monotonic()
            if outcome != "uncertain":
                shared.note(outcome, key, reply)
            return self._after(item, outcome, reply)
        except BaseException as error:  # the thread must answer for every item, whatever happens
            return _Result(item, "uncertain" if in_flight else "unsent", error=error)

    def _connected(self) -> bool:
        """Open this worker's connection if it has none (or lost it), retrying with back-off."""
        idle = time.monotonic() - self.last_used > _IDLE_SECONDS
        if self.connection is not None and idle and not _alive(self.connection):
            self.connection.close()
            self.connection = None
        attempt = 0
        while self.connection is None:
            try:
                self.connection = _connect(self.shared.smtp, self.shared.password)
            except _Unreachable:
                attempt += 1
                if attempt > self.shared.smtp.retry_attempts:
                    raise
                if not self.shared.pause(self.shared.backoff(attempt)):
                    return False
        return True

    def _transact(self, outgoing: Outgoing) -> tuple[_Outcome, str]:
        """One SMTP transaction, step by step, so a lost connection is placed exactly.

        Lost before the end of DATA, the message certainly did not arrive and is retried;
        lost while waiting for the server's answer to it, it may have arrived: uncertain,
        never retried, so nobody gets the issue twice.
        """
        assert self.connection is not None
        connection = self.connection
        envelope_from = self.shared.envelope_from
        options = []
        if not outgoing.message.isascii() and connection.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if not (envelope_from + outgoing.envelope_to).isascii():
            if not connection.has_extn("smtputf8"):
                return "failed", "the server does not accept addresses with non-ASCII letters"
            options.append("SMTPUTF8")
        try:
            code, text = connection.mail(envelope_from, options)
            if code != 250:
                return self._refused(code, text, sender=True)
            code, text = connection.rcpt(outgoing.envelope_to)
            if code not in (250, 251):
                return self._refused(code, text)
            code, text = connection.docmd("DATA")
            if code != 354:
                return self._refused(code, text)
            connection.send(_data_block(outgoing.message))
        except smtplib.SMTPServerDisconnected as exc:
            return "dropped", f"the server closed the connection ({exc})"
        try:
            code, text = connection.getreply()
        except smtplib.SMTPServerDisconnected:
            return "uncertain", ""
        if code == 250:
            return "sent", ""
        return self._refused(code, text)

    def _refused(self, code: int, text: bytes, *, sender: bool = False) -> tuple[_Outcome, str]:
        reply = _reply(code, text)
        if code == 421:  # the server is closing the connection: nothing was taken
            return "dropped", reply
        assert self.connection is not None
        try:
            self.connection.rset()
        except smtplib.SMTPServerDisconnected:
            self.connection.close()
        if 400 <= code < 500:
            return "deferred", reply
        return ("sender-refused" if sender else "failed"), reply

    def _after(self, item: _Item, outcome: _Outcome, reply: str) -> _Result:
        """Keep the connection only if it is still good; stop the run when nothing can go."""
        error: SmakomError | None = None
        connection = self.connection
        if outcome in ("dropped", "uncertain") and connection is not None:
            connection.close()
        if connection is not None and connection.sock is None:
            self.connection = None
        if outcome == "dropped":
            self.drops_in_a_row += 1
            if self.drops_in_a_row >= _MAX_DROPS_IN_A_ROW:
                error = SmakomError(
                    f"{_where(self.shared.smtp)} keeps closing the connection ({reply}). "
                    "Try again later; the messages not sent yet go then."
                )
        else:
            self.drops_in_a_row = 0
        if outcome == "sender-refused":
            error = SmakomError(
                f"{_where(self.shared.smtp)} refused the sender address "
                f"{self.shared.envelope_from} ({reply}). Check [sender] email, and that "
                "[smtp] username may send as it."
            )
        return _Result(item, outcome, reply, error)


def _connect(smtp: SmtpConfig, password: str | None) -> smtplib.SMTP:
    """An open, secured and logged-in connection; a SmakomError says what to fix."""
    if smtp.security == "none" and smtp.host not in LOCAL_HOSTS:
        raise SmakomError(
            f'[smtp] security = "none" would send the password and every message unencrypted '
            f'to {smtp.host}; it is only allowed for localhost. Use "starttls" or "tls".'
        )
    if smtp.username and password is None:
        raise SmakomError(
            f"No password for {smtp.username}: run `smakom login` "
            "(or set SMAKOM_SMTP_PASSWORD for unattended runs)."
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
        raise _explain(exc, smtp) from None
    try:
        connection.ehlo()
        if smtp.security == "starttls":
            connection.starttls(context=context)
            connection.ehlo()
        if smtp.username and password is not None:
            _login(connection, smtp, password)
    except OSError as exc:
        connection.close()
        raise _explain(exc, smtp) from None
    except BaseException:
        connection.close()
        raise
    return connection


def _tls_context(smtp: SmtpConfig) -> ssl.SSLContext:
    """Certificate and host name checked, against ca_file when the server has its own CA."""
    try:
        return ssl.create_default_context(cafile=smtp.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise SmakomError(
            f"[smtp] ca_file {smtp.ca_file} cannot be used ({exc}). "
            "It must be the PEM certificate of the authority that signed the server's."
        ) from None


def _login(connection: smtplib.SMTP, smtp: SmtpConfig, password: str) -> None:
    """AUTH once with PLAIN (or LOGIN), credentials as UTF-8 (RFC 4616).

    smtplib's login() encodes them as ASCII (a password with å fails) and tries every
    mechanism in turn, so a wrong password would count twice against a lock-out limit.
    """
    if not connection.has_extn("auth"):
        raise SmakomError(
            f"{_where(smtp)} does not offer a login on this connection. Check [smtp] "
            "security, or leave [smtp] username empty if the server needs no login."
        )
    mechanisms = connection.esmtp_features["auth"].upper().split()
    if "PLAIN" in mechanisms:
        token = _b64(f"\0{smtp.username}\0{password}")
        code, text = connection.docmd("AUTH", f"PLAIN {token}")
    elif "LOGIN" in mechanisms:
        code, text = connection.docmd("AUTH", f"LOGIN {_b64(smtp.username)}")
        if code == 334:
            code, text = connection.docmd(_b64(password))
    else:
        raise SmakomError(
            f"{_where(smtp)} offers no login method smakom knows "
            f"(it offers {' '.join(mechanisms)}; smakom uses PLAIN or LOGIN)."
        )
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, text)


def _explain(exc: OSError, smtp: SmtpConfig) -> SmakomError:
    """One sentence for a failure to connect, secure the connection or log in."""
    where = _where(smtp)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SmakomError(
            f"The certificate of {where} could not be verified ({exc.verify_message}). "
            "If the server uses its own certificate authority, set [smtp] ca_file to that "
            "authority's certificate (a PEM file)."
        )
    if isinstance(exc, ssl.SSLError):
        return SmakomError(
            f"The TLS handshake with {where} failed ({exc.reason or exc}). Check [smtp] "
            'security: "starttls" is usual on port 587, "tls" on port 465.'
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        return SmakomError(
            f"{where} refused the login for {smtp.username} ({reply}). "
            "Run `smakom login` to store the right password."
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return SmakomError(
            f"{where} does not offer STARTTLS, so nothing can be sent encrypted. If it expects "
            'TLS from the start (usually port 465), set [smtp] security = "tls".'
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _Unreachable(
            f"{where} closed the connection before smakom could send ({exc}). Check [smtp] "
            'port and security: "starttls" is usual on port 587, "tls" on port 465.'
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = _Unreachable if 400 <= exc.smtp_code < 500 else SmakomError
        return kind(f"{where} refused the connection ({_reply(exc.smtp_code, exc.smtp_error)}).")
    if isinstance(exc, smtplib.SMTPException):
        return SmakomError(f"{where}: {exc}.")
    return _Unreachable(
        f"Could not connect to {where}: {exc.strerror or exc}. "
        "Check [smtp] host and port in smakom.toml."
    )


def _alive(connection: smtplib.SMTP) -> bool:
    try:
        return connection.noop()[0] == 250
    except OSError:  # smtplib's errors are OSErrors too
        return False


def _hang_up(connection: smtplib.SMTP) -> None:
    """QUIT politely; a connection already gone needs no goodbye."""
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def _data_block(message: bytes) -> bytes:
    """The message as DATA carries it: leading dots doubled, a lone dot at the end (RFC 5321)."""
    block = re.sub(rb"(?m)^\.", b"..", message)
    if not block.endswith(b"\r\n"):
        block += b"\r\n"
    return block + b".\r\n"


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(f"{code} {text}".split())


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _where(smtp: SmtpConfig) -> str:
    return f"{smtp.host}:{smtp.port}"
