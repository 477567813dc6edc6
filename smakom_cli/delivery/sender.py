"""Handing built messages to the SMTP server: reused connections, a rate limit, retries.

The calling thread pulls messages from the caller's (lazy) iterator, so building the next
message overlaps the network, and hands them to one worker thread per connection (each an
`smtp` session). Workers write the journal around each message; the calling thread keeps the
tally, schedules retries and reports progress. A fault that concerns one recipient (a 5xx
reply, a 4xx that outlasts the retries) is recorded and the run goes on; a fault that concerns
every message (no connection, a refused password, a refused sender, a full disk) stops the
run, and the report says so and what was done until then.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import itertools
import queue
import smtplib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from smakom_cli.config import SmtpConfig
from smakom_cli.delivery.journal import Journal
from smakom_cli.delivery.outcome import Outcome
from smakom_cli.delivery.smtp import (
    Outgoing,
    Unreachable,
    alive,
    connect,
    data_body,
    hang_up,
    transact,
    where,
)
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.signin.providers import explain_reply, is_sending_limit
from smakom_cli.signin.resolver import Login

# The calling thread never blocks longer than this, so a Ctrl-C (which only sets `stop`, and
# on Windows does not wake a blocked wait) is noticed promptly.
_POLL_SECONDS = 0.25
# A server that closes the connection this many times in a row with no message getting
# through in between will not take the message: stop rather than loop.
_MAX_DROPS_IN_A_ROW = 3
# Retry delays double from retry_delay up to this many times retry_delay.
_MAX_BACKOFF_FACTOR = 10
# Linux and macOS send on what a killed process had handed to a connection; Windows may reset
# a killed process's connections and drop it, so there a cut-off "." stays uncertain.
_HANDED_OUTLIVES_US = sys.platform != "win32"
# Not taken, for a reason that is not the recipient's: the next run sends them.
_JOURNALLED_AS = {Outcome.DROPPED: Outcome.DEFERRED, Outcome.SENDER_REFUSED: Outcome.DEFERRED}
_DAY_SECONDS = 24 * 3600.0
# A connection unused for this long (e.g. while the rate limit waits) is checked with NOOP
# before use: servers close idle connections, and that is no reason to count a failure.
_IDLE_SECONDS = 10.0


@dataclass(frozen=True)
class Failure:
    """A recipient the server refused, with its reply (e.g. "550 5.1.1 no such user")."""

    key: str
    reply: str


@dataclass(frozen=True)
class ProgressEvent:
    """One outcome, reported from the calling thread as it happens.

    DEFERRED with `final` False means "tried again in a while"; with `final` True the
    retries are used up and the next run sends it.
    """

    outcome: Outcome
    key: str
    reply: str = ""
    final: bool = True


@dataclass(frozen=True)
class SendReport:
    """What a run did; `skipped` were unsubscribed while it ran.

    `deferred` were refused for now (4xx) more often than the retries allow: not done, the
    next run sends them. `stopped_by` is the sentence of a fault that ended the run early.
    """

    sent: int
    failed: tuple[Failure, ...]
    retried: int
    skipped: int
    uncertain: tuple[str, ...]
    interrupted: bool
    deferred: tuple[Failure, ...] = ()
    stopped_by: str = ""
    resume_after: dt.datetime | None = None
    """When a daily sending limit stopped the run: the earliest time the rest can go."""

    @property
    def complete(self) -> bool:
        """Every message went out: none failed, deferred or uncertain, not cut short."""
        return not (
            self.failed or self.deferred or self.uncertain or self.interrupted or self.stopped_by
        )


def send_messages(
    outgoing: Iterable[Outgoing],
    smtp: SmtpConfig,
    *,
    envelope_from: str,
    login: Callable[[], Login | None],
    journal: Journal | None,
    is_suppressed: Callable[[str], bool],
    on_progress: Callable[[ProgressEvent], None] = lambda _event: None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
    idle_seconds: float = _IDLE_SECONDS,
) -> SendReport:
    """Send every message once; returns early, interrupted, when `stop` is set or on Ctrl-C.

    `login` is asked for the credentials at every (re)connect, so a sign-in token can be
    refreshed between connections. `is_suppressed` is asked right before each message
    (serialised, from the worker threads); `on_progress` is called from the calling thread
    only. `clock` and `sleep` exist for tests of the rate limit; without `sleep`, waits end
    as soon as the run stops. A connection unused for `idle_seconds` is checked with NOOP
    before its next message. A fault before the first message raises; a later one ends the
    run with `stopped_by` set. When every message went out, the journal is marked complete.
    """
    # Fail before a message is built or journalled if the server cannot be used at all.
    first = connect(smtp, login())
    shared = _Shared(
        smtp=smtp,
        envelope_from=envelope_from,
        login=login,
        journal=journal,
        is_suppressed=is_suppressed,
        clock=clock,
        sleep=sleep,
        idle_seconds=idle_seconds,
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
        for _worker in workers:
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
    body: bytes  # the message as DATA carries it, dots doubled in the calling thread
    attempts: int = 0  # temporary (4xx) refusals so far


@dataclass(frozen=True)
class _Result:
    """What a worker did with one item; exactly one per item handed out."""

    item: _Item
    outcome: Outcome
    reply: str = ""
    error: BaseException | None = None  # ends the run


class _Shared:
    """What the calling thread and the workers share."""

    def __init__(
        self,
        *,
        smtp: SmtpConfig,
        envelope_from: str,
        login: Callable[[], Login | None],
        journal: Journal | None,
        is_suppressed: Callable[[str], bool],
        clock: Callable[[], float],
        sleep: Callable[[float], None] | None,
        idle_seconds: float,
    ) -> None:
        self.smtp = smtp
        self.envelope_from = envelope_from
        self.login = login
        self.journal = journal
        self.clock = clock
        self.idle_seconds = idle_seconds
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

    def note(self, outcome: Outcome, key: str, reply: str = "") -> None:
        """Write one outcome to the journal (proofs have no journal)."""
        if self.journal is not None:
            self.journal.record(outcome, key, reply)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before try number `attempt` + 1: doubling, with a ceiling."""
        delay = self.smtp.retry_delay
        return float(min(delay * 2 ** (attempt - 1), delay * _MAX_BACKOFF_FACTOR))


class DailyLimitReached(SmakomError):
    """[smtp] rate_per_day messages started in 24 hours: the run stops, to go on later."""

    def __init__(self, limit: int, resume_after: dt.datetime) -> None:
        when = resume_after.astimezone().strftime("%Y-%m-%d %H:%M %Z")
        super().__init__(
            _(
                "The daily limit of {limit} messages ([smtp] rate_per_day) is reached: run the "
                "same command again after {when} to send to the rest."
            ).format(limit=limit, when=when)
        )
        self.resume_after = resume_after


class SendingLimitRefused(SmakomError):
    """The provider refused a message because the mailbox reached its sending quota."""

    def __init__(self, smtp: SmtpConfig, reply: str) -> None:
        advice = explain_reply(smtp.provider, reply) or _("run the same command again tomorrow.")
        super().__init__(
            _("{server} stopped the send ({reply}). {advice}").format(
                server=where(smtp), reply=reply, advice=advice
            )
        )
        # Microsoft and Google count a rolling 24 hours and say no more precisely.
        self.resume_after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=_DAY_SECONDS)


_REFUSALS = frozenset({Outcome.FAILED, Outcome.DEFERRED, Outcome.SENDER_REFUSED})


class _RateLimit:
    """Start times of recent messages on all connections, so no window exceeds its limit.

    The minute and hour windows wait; the day window (rate_per_day, a rolling 24 hours, as
    Microsoft 365 and Google count) stops the run instead of waiting for hours.
    """

    def __init__(self, smtp: SmtpConfig, clock: Callable[[], float]) -> None:
        self._windows = [
            (limit, seconds, deque[float]())
            for limit, seconds in ((smtp.rate_per_minute, 60.0), (smtp.rate_per_hour, 3600.0))
            if limit > 0
        ]
        self._day_limit = smtp.rate_per_day
        self._day = deque[float]()
        self._clock = clock
        self._lock = threading.Lock()

    def take_turn(self, pause: Callable[[float], bool]) -> bool:
        """Wait until a message may start and count it as started; False if the run stops.

        Raises DailyLimitReached when the day's quota is used up.
        """
        while True:
            with self._lock:
                now = self._clock()
                self._check_day(now)
                delay = 0.0
                for limit, seconds, starts in self._windows:
                    while starts and starts[0] + seconds <= now:
                        starts.popleft()
                    if len(starts) >= limit:
                        delay = max(delay, starts[0] + seconds - now)
                if delay <= 0:
                    for _limit, _span, starts in self._windows:
                        starts.append(now)
                    if self._day_limit > 0:
                        self._day.append(now)
                    return True
            if not pause(delay):
                return False

    def _check_day(self, now: float) -> None:
        if self._day_limit <= 0:
            return
        while self._day and self._day[0] + _DAY_SECONDS <= now:
            self._day.popleft()
        if len(self._day) >= self._day_limit:
            wait = self._day[0] + _DAY_SECONDS - now
            resume = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait)
            raise DailyLimitReached(self._day_limit, resume)


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
        self.deferred: list[Failure] = []
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
                break
            self._take(result)
        # Messages waiting for a retry when the run stopped: the journal says "deferred".
        for _due, _order, item in self.retries:
            self._defer(item.outgoing.key, _("not tried again before the send stopped"))
        self.retries.clear()

    def report(self, *, interrupted: bool) -> SendReport:
        stopped_by = ""
        if self.error is not None:
            if not isinstance(self.error, SmakomError | OSError):
                raise self.error  # a bug: the traceback is what helps
            stopped_by = _sentence(self.error)
        resume_after = None
        if isinstance(self.error, DailyLimitReached | SendingLimitRefused):
            resume_after = self.error.resume_after
        return SendReport(
            sent=self.sent,
            failed=tuple(self.failed),
            retried=self.retried,
            skipped=self.skipped,
            uncertain=tuple(self.uncertain),
            interrupted=interrupted and not stopped_by,
            deferred=tuple(self.deferred),
            stopped_by=stopped_by,
            resume_after=resume_after,
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
                        self._hand_out(_Item(message, data_body(message.message)))
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
        match result.outcome:
            case Outcome.SENT:
                self.sent += 1
                self._progress(Outcome.SENT, key)
            case Outcome.FAILED:
                self.failed.append(Failure(key, result.reply))
                self._progress(Outcome.FAILED, key, result.reply)
            case Outcome.SKIPPED:
                self.skipped += 1
                self._progress(Outcome.SKIPPED, key)
            case Outcome.UNCERTAIN:
                self.uncertain.append(key)
                self._progress(Outcome.UNCERTAIN, key)
            case Outcome.DEFERRED:
                self._retry_later(result.item, result.reply)
            case Outcome.DROPPED:
                self._retry(result.item, self.shared.clock(), result.reply)

    def _retry_later(self, item: _Item, reply: str) -> None:
        """A 4xx: try again after a back-off, other messages meanwhile; the next run if need be."""
        attempts = item.attempts + 1
        if attempts > self.shared.smtp.retry_attempts or self.shared.halt.is_set():
            self._defer(item.outgoing.key, reply)
            return
        due = self.shared.clock() + self.shared.backoff(attempts)
        self._retry(replace(item, attempts=attempts), due, reply)

    def _defer(self, key: str, reply: str) -> None:
        """Not taken this run (the journal already says deferred): the next run sends it."""
        self.deferred.append(Failure(key, reply))
        self._progress(Outcome.DEFERRED, key, reply)

    def _retry(self, item: _Item, due: float, reply: str) -> None:
        if self.shared.halt.is_set():
            self._defer(item.outgoing.key, reply)
            return
        heapq.heappush(self.retries, (due, next(self.order), item))
        self.retried += 1
        self._progress(Outcome.DEFERRED, item.outgoing.key, reply, final=False)

    def _progress(self, outcome: Outcome, key: str, reply: str = "", *, final: bool = True) -> None:
        self.on_progress(ProgressEvent(outcome, key, reply, final))


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
            hang_up(self.connection)

    def _deliver(self, item: _Item) -> _Result:
        shared = self.shared
        key = item.outgoing.key
        ended = False

        def before_end() -> None:
            nonlocal ended
            if ticket is not None and shared.journal is not None:
                shared.journal.mark_ending(ticket)
            ended = True

        def after_end() -> None:
            if ticket is not None and shared.journal is not None and _HANDED_OUTLIVES_US:
                shared.journal.mark_handed(ticket)

        ticket = None
        try:
            if (
                shared.halt.is_set()
                or not shared.rate.take_turn(shared.pause)
                or not self._connected()
            ):
                return _Result(item, Outcome.UNSENT)
            if shared.is_suppressed(key):
                shared.note(Outcome.SKIPPED, key)
                return _Result(item, Outcome.SKIPPED)
            if shared.journal is not None:
                ticket = shared.journal.mark_in_flight(key)
            assert self.connection is not None
            outcome, reply = transact(
                self.connection,
                shared.envelope_from,
                item.outgoing,
                before_end,
                body=item.body,
                after_end=after_end,
            )
            self.last_used = time.monotonic()
            if outcome in _REFUSALS and is_sending_limit(shared.smtp.provider, reply):
                # The mailbox's quota, not this recipient: deferred, and the run stops.
                shared.note(Outcome.DEFERRED, key, reply)
                error = SendingLimitRefused(shared.smtp, reply)
                return _Result(item, Outcome.DEFERRED, reply, error=error)
            shared.note(_JOURNALLED_AS.get(outcome, outcome), key, reply)
            return self._after(item, outcome, reply)
        except BaseException as error:  # the thread must answer for every item, whatever happens
            if self.connection is not None:
                self.connection.close()
                self.connection = None
            if not ended:  # before the end of DATA the server cannot have taken it: resent
                return _Result(item, Outcome.UNSENT, error=error)
            # Without this line a message handed over whole would count as sent; the journal
            # itself may be what failed, and then nothing more can be written.
            with contextlib.suppress(Exception):
                shared.note(Outcome.UNCERTAIN, key)
            return _Result(item, Outcome.UNCERTAIN, error=error)

    def _connected(self) -> bool:
        """Open this worker's connection if it has none (or lost it), retrying with back-off."""
        idle = time.monotonic() - self.last_used > self.shared.idle_seconds
        if self.connection is not None and idle and not alive(self.connection):
            self.connection.close()
            self.connection = None
        # A server may close after so many messages: the first reconnect is at once. Closed
        # again straight away ("421 try again later"), it is given time before the next.
        dropped = self.drops_in_a_row - 1
        if (
            self.connection is None
            and dropped > 0
            and not self.shared.pause(self.shared.backoff(dropped))
        ):
            return False
        attempt = 0
        while self.connection is None:
            try:
                self.connection = connect(self.shared.smtp, self.shared.login())
            except Unreachable:
                attempt += 1
                if attempt > self.shared.smtp.retry_attempts:
                    raise
                if not self.shared.pause(self.shared.backoff(attempt)):
                    return False
        return True

    def _after(self, item: _Item, outcome: Outcome, reply: str) -> _Result:
        """Keep the connection only if it is still good; stop the run when nothing can go."""
        error: SmakomError | None = None
        connection = self.connection
        if outcome in (Outcome.DROPPED, Outcome.UNCERTAIN) and connection is not None:
            connection.close()
        if connection is not None and connection.sock is None:
            self.connection = None
        if outcome == Outcome.DROPPED:
            self.drops_in_a_row += 1
            if self.drops_in_a_row >= _MAX_DROPS_IN_A_ROW:
                error = SmakomError(
                    _(
                        "{where} keeps closing the connection ({reply}). Try again later; the "
                        "messages not sent yet go then."
                    ).format(where=where(self.shared.smtp), reply=reply)
                )
        else:
            self.drops_in_a_row = 0
        if outcome == Outcome.SENDER_REFUSED:
            advice = explain_reply(self.shared.smtp.provider, reply) or (
                # 530 (RFC 4954 6): the server takes mail only after a login, none was made.
                _(
                    "The server wants a login first: set [smtp] username in smakom.toml and "
                    "store its password with `smakom login`."
                )
                if reply.startswith("530")
                else _("Check [sender] email, and that [smtp] username may send as it.")
            )
            error = SmakomError(
                _("{where} refused the sender address {envelope_from} ({reply}). {advice}").format(
                    where=where(self.shared.smtp),
                    envelope_from=self.shared.envelope_from,
                    reply=reply,
                    advice=advice,
                )
            )
        return _Result(item, outcome, reply, error)


def _sentence(error: BaseException) -> str:
    """The one line a user reads about a fault that stopped the run."""
    if isinstance(error, OSError) and not isinstance(error, SmakomError):
        where_ = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or error}{where_}"
    return str(error)
