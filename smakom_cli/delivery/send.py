"""The jobs of `smakom send`, each one call: an issue to the list, and a proof.

`send_issue` strings the steps together in the one order that keeps the promises: the
one-click service's events fetched (not written), the check, the plan, the confirmation, the
events written, the link key made, the run (stop signals caught, the service asked again
while it runs), the report. Everything before the confirmation only reads, so a declined send
touches no file.
"""

from __future__ import annotations

import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from smakom_cli.delivery.mailing import Mailing
from smakom_cli.delivery.sender import ProgressEvent, SendReport, send_messages
from smakom_cli.delivery.workflow import (
    DeliveryReport,
    SendPlan,
    holding_issue,
    plan_send,
    remember,
    run_send,
)
from smakom_cli.errors import ExitCode, SmakomError
from smakom_cli.i18n import _, ngettext
from smakom_cli.returns.sync import (
    SyncBatch,
    SyncResult,
    apply_events,
    fetch_events,
    pending_unsubscribes,
    service_urls,
)
from smakom_cli.signin.resolver import NoSyncKey, Resolver, no_sync_key

# The one-click service is asked for new events at least this often while a send runs
# (a five-hour send at Microsoft 365's 30 a minute must not mail who left an hour in), and
# a failed try is tried again sooner; after this many failed tries in a row the send stops,
# resumably, rather than go on mailing people who may have left.
REFRESH_SECONDS = 60.0
RETRY_SECONDS = 15.0
REFRESH_TRIES = 3


@dataclass(frozen=True)
class SendOptions:
    """How `smakom send` was asked to send to the list."""

    force: bool = False
    resend_uncertain: bool = False
    again: bool = False
    sync: bool = True


@dataclass(frozen=True)
class Starting:
    """What the confirmed send wrote before its first message: shown above the progress."""

    plan: SendPlan
    synced: SyncResult | None
    service: str  # where the events came from ("" without a sync)
    made_key: bool


@dataclass(frozen=True)
class SendOutcome:
    """How `send_issue` ended: refused, nothing to send, declined, or a run and its report."""

    plan: SendPlan
    declined: bool = False
    delivery: DeliveryReport | None = None

    @property
    def exit_code(self) -> ExitCode:
        delivery = self.delivery
        if delivery is None:
            if self.declined or self.plan.refusal:
                return ExitCode.ERROR
            # Nothing to send, but the uncertain are still for someone to decide.
            return ExitCode.FAILED if self.plan.uncertain else ExitCode.DONE
        if delivery.resumable:
            return ExitCode.RESUMABLE
        if delivery.send.failed or delivery.uncertain:
            return ExitCode.FAILED
        return ExitCode.DONE


def send_issue(
    mailing: Mailing,
    signin: Resolver,
    options: SendOptions,
    *,
    confirm: Callable[[SendPlan], bool],
    on_start: Callable[[Starting], Callable[[ProgressEvent], None]] = lambda _s: _ignore,
    refresh_seconds: float = REFRESH_SECONDS,
    retry_seconds: float = RETRY_SECONDS,
    boot: str | None = None,
) -> SendOutcome:
    """Sync, check, plan, confirm, write the events, make the key, run, report: one send.

    `mailing` carries no key yet; `confirm` is asked only when there is something to send,
    and nothing is written before it says yes. `on_start` is told what was written before
    the first message and returns the progress callback. The issue is held from before the
    plan to the end, so a second send of it at the same time is refused.
    """
    with holding_issue(mailing):
        return _send_held(
            mailing,
            signin,
            options,
            confirm=confirm,
            on_start=on_start,
            refresh_seconds=refresh_seconds,
            retry_seconds=retry_seconds,
            boot=boot,
        )


def _send_held(
    mailing: Mailing,
    signin: Resolver,
    options: SendOptions,
    *,
    confirm: Callable[[SendPlan], bool],
    on_start: Callable[[Starting], Callable[[ProgressEvent], None]],
    refresh_seconds: float,
    retry_seconds: float,
    boot: str | None,
) -> SendOutcome:
    key = signin.link_key()
    batch = _fetch_unsubscribes(mailing, signin, key) if options.sync else None
    # Until the key is made the check signs with a stand-in: no message leaves with it.
    looking = replace(mailing, secret=key or _stand_in(mailing))
    plan = plan_send(
        looking,
        findings=looking.check(),
        force=options.force,
        resend_uncertain=options.resend_uncertain,
        again=options.again,
        leave_out=pending_unsubscribes(batch) if batch is not None else frozenset(),
        boot=boot,
    )
    if plan.refusal:
        return SendOutcome(plan)
    if plan.nothing_to_send:
        remember(plan, looking)  # a witness made for the first time
        return SendOutcome(plan)
    if not confirm(plan):
        return SendOutcome(plan, declined=True)
    synced = apply_events(mailing.config, batch) if batch is not None else None
    key, made = signin.make_link_key()
    mailing = replace(mailing, secret=key)
    urls = service_urls(mailing.config)
    on_progress = on_start(Starting(plan, synced, urls.events if urls and synced else "", made))
    listening = None
    if batch is not None and key is not None:
        listening = _Listening(
            lambda: _refresh(mailing, signin, key),
            every=refresh_seconds,
            retry=retry_seconds,
        )
    with _stop_signals() as stop, _listening(listening, stop):
        delivery = run_send(
            plan,
            mailing,
            login=signin.smtp_logins(),
            on_progress=on_progress,
            stop=stop,
            boot=boot,
            before_last=listening.refresh_now if listening else _ignore,
            stop_reason=lambda: listening.failure if listening else "",
        )
    return SendOutcome(plan, delivery=delivery)


@dataclass(frozen=True)
class ProofOutcome:
    report: SendReport
    made_key: bool  # the list's link key was made for it (the first thing ever sent)

    @property
    def exit_code(self) -> ExitCode:
        report = self.report
        if report.stopped_by or report.interrupted or report.deferred:
            return ExitCode.RESUMABLE
        return ExitCode.DONE if report.complete else ExitCode.FAILED


def send_proof(
    mailing: Mailing, signin: Resolver, addresses: Iterable[str], *, as_email: str | None
) -> ProofOutcome:
    """A proof to `addresses` only, personalised as `as_email` (or a sample reader); its links
    act on nobody."""
    from smakom_cli.audience.subscribers import parse_address

    login = signin.smtp_logins()
    key, made = signin.make_link_key()
    mailing = replace(mailing, secret=key)
    to = [parse_address(address).send_to for address in addresses]
    report = send_messages(
        mailing.proofs(to, mailing.sample(as_email) if as_email else None),
        mailing.config.smtp,
        envelope_from=mailing.config.sender.email,
        login=login,
        journal=None,
        is_suppressed=lambda _key: False,
    )
    return ProofOutcome(report, made)


def _ignore(*_args: object) -> None:
    return None


def _stand_in(mailing: Mailing) -> bytes | None:
    return secrets.token_bytes(32) if mailing.config.unsubscribe.url else None


def _fetch_unsubscribes(mailing: Mailing, signin: Resolver, key: bytes | None) -> SyncBatch | None:
    """The one-click service's new events, fetched (not yet written) before a send plans.

    Nobody is mailed on stale data: a service that cannot be reached stops the send, unless
    --no-sync says to go on without it. Without the link key on this computer, an event that
    only the key can match to an address stops it too: that reader would be mailed.
    """
    config = mailing.config
    if service_urls(config) is None:
        return None
    try:
        sync_key = signin.sync_key()
    except NoSyncKey:
        raise SmakomError(no_sync_key(or_else=_("send with --no-sync"))) from None
    except SmakomError as exc:  # no keyring on this machine
        raise SmakomError(_("{exc} Or send with --no-sync.").format(exc=exc)) from None
    try:
        batch = fetch_events(config, sync_key, key, lists=[mailing.subscribers_path])
    except SmakomError as exc:
        raise SmakomError(
            _("{exc} Nobody was mailed; send with --no-sync to send without it.").format(exc=exc)
        ) from None
    if key is None and batch.unresolved:
        count = len(batch.unresolved)
        raise SmakomError(
            ngettext(
                "{count} unsubscribe on the one-click service cannot be matched to an "
                "address: {why} Nobody was mailed.",
                "{count} unsubscribes on the one-click service cannot be matched to an "
                "address: {why} Nobody was mailed.",
                count,
            ).format(count=count, why=signin.no_link_key())
        )
    return batch


def _refresh(mailing: Mailing, signin: Resolver, key: bytes) -> None:
    """During a send: the service's new events written to unsubscribed.csv, as at the start,
    where the sender looks before each message."""
    config = mailing.config
    batch = fetch_events(config, signin.sync_key(), key, lists=[mailing.subscribers_path])
    # Nothing new (the usual answer) writes nothing: the sync state stays as the start left it.
    if batch.events:
        apply_events(config, batch)


class _Listening:
    """A thread that asks the one-click service again while a send runs.

    Its own thread, so a slow service costs the send nothing; the sender reads
    unsubscribed.csv again before each message whenever the file has changed.
    """

    def __init__(self, refresh: Callable[[], None], *, every: float, retry: float) -> None:
        self._refresh = refresh
        self._every = every
        self._retry = retry
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._done = threading.Condition()
        self._rounds = 0
        self.failure = ""
        self._stop: threading.Event | None = None
        self._thread = threading.Thread(target=self._run, name="smakom-listening", daemon=True)

    def start(self, stop: threading.Event) -> None:
        self._stop = stop
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        self._thread.join()

    def refresh_now(self, timeout: float = 10.0) -> None:
        """Ask once more and wait for the answer (before the last message of a run)."""
        with self._done:
            wanted = self._rounds + 1
            self._wake.set()
            self._done.wait_for(lambda: self._rounds >= wanted or self.failure != "", timeout)

    def _run(self) -> None:
        failures = 0
        wait = self._every
        while True:
            self._wake.wait(wait)
            self._wake.clear()
            if self._closed.is_set():
                return
            try:
                self._refresh()
            # Whatever goes wrong (the network, a locked or damaged unsubscribed.csv), the
            # send must not go on as if it were still listening.
            except Exception as exc:
                failures += 1
                if failures >= REFRESH_TRIES:
                    self._give_up(str(exc), failures)
                    return
                wait = self._retry
            else:
                failures = 0
                wait = self._every
            with self._done:
                self._rounds += 1
                self._done.notify_all()

    def _give_up(self, reason: str, tries: int) -> None:
        with self._done:
            self.failure = _(
                "the one-click service could not be asked who unsubscribed during the send "
                "({tries} tries in a row; the last: {reason}), so the send stopped rather than "
                "mail someone who may have left."
            ).format(tries=tries, reason=reason.rstrip("."))
            self._done.notify_all()
        assert self._stop is not None
        self._stop.set()


@contextmanager
def _listening(listening: _Listening | None, stop: threading.Event) -> Iterator[None]:
    if listening is None:
        yield
        return
    listening.start(stop)
    try:
        yield
    finally:
        listening.close()


# Ctrl-C, `kill` (cron, systemd) and closing the terminal all stop a send the same way.
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
# A crash between the journal's line before the final "." and its line once the "." is handed
# to the system leaves a message uncertain. Python hands the interpreter between threads every
# 5 ms by default, so the sending thread could wait that long there, behind the progress
# display or the message builder; during a send it waits at most half a millisecond.
_SWITCH_SECONDS = 0.0005


@contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """A stop signal asks the send to stop after the message in progress, instead of killing
    it; the thread switch interval is short while it runs."""
    stop = threading.Event()
    # Signals can only be caught in the main thread (a scheduler may call from another).
    main = threading.current_thread() is threading.main_thread()
    previous = {number: signal.getsignal(number) for number in _STOP_SIGNALS} if main else {}
    for number in previous:
        signal.signal(number, lambda _signum, _frame: stop.set())
    switch = sys.getswitchinterval()
    sys.setswitchinterval(_SWITCH_SECONDS)
    try:
        yield stop
    finally:
        sys.setswitchinterval(switch)
        for number, handler in previous.items():
            signal.signal(number, handler)
