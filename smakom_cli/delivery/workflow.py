"""Sending an issue to the list, in two steps: a plan that only reads, then the run.

`plan_send` decides everything (who is waiting, who already has the issue from any list or
copy of the issue file, who is uncertain, what the check found, which journal is used) and
changes nothing, so a declined confirmation or a Ctrl-C at the prompt leaves the folder as it
was. `run_send` is the one place that archives, opens or writes a journal and sends, and it
writes a report for every way a send can end.

One issue has one journal (`sent/<issue>.jsonl`), whatever list file or copy of the issue file
is used: a journal belongs to an issue by its name or by the fingerprint of its subject and
text, so a renamed copy of the issue, a copy of the list or a fresh Excel export mails nobody
who already got it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

from smakom_cli.audience.subscribers import Subscriber, iter_recipients
from smakom_cli.delivery.check import Finding
from smakom_cli.delivery.journal import (
    Journal,
    JournalHeader,
    JournalState,
    archive_journal,
    current_boot,
    forget_journals,
    hold_issue,
    issue_header,
    issue_journals,
    journal_for,
    witness_journals,
)
from smakom_cli.delivery.mailing import Mailing
from smakom_cli.delivery.sender import Failure, ProgressEvent, SendReport, send_messages
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _, ngettext
from smakom_cli.signin.resolver import Login


@dataclass(frozen=True)
class EarlierSend:
    """Recipients on this list who already got the issue in a run from another list."""

    list_name: str
    day: str
    count: int


@dataclass(frozen=True)
class SendPlan:
    """What `smakom send` would do, decided before anything is written."""

    issue: str
    subject: str
    list_path: Path
    list_name: str
    host: str
    journal: Path
    header: JournalHeader
    to_archive: tuple[Path, ...]  # with --again: the journals moved aside, never deleted
    recipients: int  # on the list and not unsubscribed
    left_since: int  # on the list, and unsubscribed on the web since the last sync
    pending: int  # to be sent by this run
    already: int  # on the list, and already got the issue
    earlier: tuple[EarlierSend, ...]
    failed_before: tuple[Failure, ...]  # refused for good by an earlier run: not sent again
    uncertain: tuple[str, ...]  # may have arrived in an earlier run: sent only when asked
    handed: tuple[str, ...]  # reached the server whole as a run was cut off: counted as sent
    resend_uncertain: bool
    again: bool
    findings: tuple[Finding, ...]
    refusal: str  # why it must not run ("" when it may)

    @property
    def nothing_to_send(self) -> bool:
        return self.pending == 0

    @property
    def question(self) -> str:
        """The confirmation to ask, with the count and where it goes."""
        if self.again:
            question = ngettext(
                "Send '{subject}' to {count} recipient again (a new journal; the old one is "
                "kept) via {host}?",
                "Send '{subject}' to {count} recipients again (a new journal; the old one is "
                "kept) via {host}?",
                self.pending,
            )
        else:
            question = ngettext(
                "Send '{subject}' to {count} recipient via {host}?",
                "Send '{subject}' to {count} recipients via {host}?",
                self.pending,
            )
        return question.format(subject=self.subject, count=self.pending, host=self.host)

    @property
    def nothing_to_send_reason(self) -> str:
        """What to say when there is nothing to send: only "everyone" when it is true."""
        if not self.recipients:
            return _("Nobody on {list} is to receive the newsletter; nothing to send.").format(
                list=self.list_name
            )
        if self.failed_before or self.uncertain:
            return _(
                "Nothing left to send from {list}: {already} got '{subject}', {failed} were "
                "refused for good and {uncertain} are uncertain (see below)."
            ).format(
                list=self.list_name,
                already=self.already,
                subject=self.subject,
                failed=len(self.failed_before),
                uncertain=len(self.uncertain),
            )
        return _("'{subject}' has already gone to everyone on {list}; nothing to send.").format(
            subject=self.subject, list=self.list_name
        )


@dataclass(frozen=True)
class DeliveryReport:
    """How a run ended, with what is still open in the journal after it."""

    plan: SendPlan
    send: SendReport
    uncertain: tuple[str, ...]  # after this run, from this run or any earlier one
    handed: tuple[str, ...]  # handed to the server whole, its answer never read: count as sent
    report_file: Path | None
    report_error: str  # why the report file could not be written ("" when it was)

    @property
    def still_to_send(self) -> int:
        """Who the same command would send to next: never reached, cut short or deferred."""
        send = self.send
        done = send.sent + len(send.failed) + send.skipped + len(send.uncertain)
        return max(0, self.plan.pending - done)

    @property
    def resumable(self) -> bool:
        """The same command would send more: it was cut short, or some were deferred."""
        return bool(self.send.interrupted or self.send.stopped_by or self.send.deferred)

    @property
    def next_step(self) -> str:
        """What to do to send the rest, and when it makes sense ("" when nothing is left)."""
        if not self.resumable:
            return ""
        count = self.still_to_send
        send = self.send
        if send.resume_after is not None:
            when = send.resume_after.astimezone().strftime("%Y-%m-%d %H:%M")
            return _(
                "Run the same command again to send to the {count} not yet sent, after {when} "
                "(the day's sending limit)."
            ).format(count=count, when=when)
        if send.stopped_by:
            return _(
                "Run the same command again to send to the {count} not yet sent, once what "
                "stopped it is put right."
            ).format(count=count)
        if send.interrupted:
            return _("Run the same command again to send to the {count} not yet sent.").format(
                count=count
            )
        return _(
            "Run the same command again to send to the {count} not yet sent: the server asked "
            "to wait, so in 15 minutes or later (throttling and greylisting usually lift within "
            "the hour)."
        ).format(count=count)


def holding_issue(mailing: Mailing) -> AbstractContextManager[None]:
    """The issue held for one send to the list; take it before the plan, keep it to the end."""
    header = issue_header(mailing.issue)
    return hold_issue(mailing.config.folder, header, issue_file=mailing.issue.path)


def list_name(mailing: Mailing) -> str:
    """The list as the office names it: its path inside the newsletter folder, if it is there."""
    path = mailing.subscribers_path.resolve()
    try:
        return path.relative_to(mailing.config.folder.resolve()).as_posix()
    except ValueError:
        return str(path)


def plan_send(
    mailing: Mailing,
    *,
    findings: list[Finding],
    force: bool = False,
    resend_uncertain: bool = False,
    again: bool = False,
    leave_out: frozenset[str] = frozenset(),
    boot: str | None = None,
) -> SendPlan:
    """Decide a send to the list; reads the journals and the list once, writes nothing.

    `leave_out` are addresses that unsubscribed where the list cannot see it yet (the
    one-click service's events, fetched but written to unsubscribed.csv only once the send
    is confirmed): they are counted as unsubscribed.
    """
    config = mailing.config
    header = issue_header(mailing.issue)
    journals = issue_journals(config.journal_dir, header, boot=boot)
    path = journal_for(config.journal_dir, header, journals, again=again)
    known = _Known.of([] if again else [state for _, state in journals])
    name = list_name(mailing)
    recipients = pending = already = left = 0
    earlier: Counter[tuple[str, str]] = Counter()
    failed_before: list[Failure] = []
    uncertain: list[str] = []
    for subscriber in mailing.recipients():
        if subscriber.key in leave_out:
            left += 1
            continue
        recipients += 1
        if subscriber.key in known.sent:
            already += 1
            source = known.sent[subscriber.key]
            if source[0] != name:
                earlier[source] += 1
        elif subscriber.key in known.failed:
            failed_before.append(Failure(subscriber.key, known.failed[subscriber.key]))
        elif subscriber.key in known.uncertain:
            uncertain.append(subscriber.key)
            if resend_uncertain:
                pending += 1
        else:
            pending += 1
    errors = [finding for finding in findings if finding.severity == "error"]
    refusal = ""
    if errors and not force:
        refusal = _("the check found errors; fix them (or send with --force).")
    return SendPlan(
        issue=header.issue,
        subject=header.subject,
        list_path=mailing.subscribers_path,
        list_name=name,
        host=config.smtp.host,
        journal=path,
        header=header,
        to_archive=tuple(p for p, _ in journals) if again else (),
        recipients=recipients,
        left_since=left,
        pending=pending,
        already=already,
        earlier=tuple(EarlierSend(lst, day, n) for (lst, day), n in sorted(earlier.items())),
        failed_before=tuple(failed_before),
        uncertain=tuple(uncertain),
        handed=tuple(sorted(known.handed)),
        resend_uncertain=resend_uncertain,
        again=again,
        findings=tuple(findings),
        refusal=refusal,
    )


def run_send(
    plan: SendPlan,
    mailing: Mailing,
    *,
    login: Callable[[], Login | None],
    on_progress: Callable[[ProgressEvent], None] = lambda _event: None,
    stop: threading.Event | None = None,
    boot: str | None = None,
    before_last: Callable[[], None] = lambda: None,
    stop_reason: Callable[[], str] = lambda: "",
) -> DeliveryReport:
    """Carry out a plan: the only step that writes a journal, sends and writes the report.

    `before_last` is called once before the last planned message is built (a send asks the
    one-click service once more there); `stop_reason` says why `stop` was set, when it was
    set by a fault rather than by the user.
    """
    if plan.refusal:
        raise SmakomError(plan.refusal)
    forget_journals(plan.journal.parent, plan.to_archive)
    for old in plan.to_archive:
        archive_journal(old)
    boot = boot or current_boot()
    with Journal.open(plan.journal, plan.header, list_name=plan.list_name, boot=boot) as journal:
        # Read again under the lock: another send may have run since the plan was made.
        journals = [] if plan.again else issue_journals(journal.path.parent, plan.header, boot=boot)
        known = _Known.of([state for _, state in journals])
        skip = known.not_to_send(resend_uncertain=plan.resend_uncertain)
        # Who was unsubscribed when the plan was made is left out here; whoever leaves
        # while the send runs is caught before their message and counted as skipped.
        left = mailing.suppression.suppressed()
        recipients: Iterator[Subscriber] = (
            s
            for s in iter_recipients(mailing.subscribers_path, left.__contains__)
            if s.key not in skip
        )
        report = send_messages(
            mailing.messages(_calling_before_last(recipients, plan.pending, before_last)),
            mailing.config.smtp,
            envelope_from=mailing.config.sender.email,
            login=login,
            journal=journal,
            is_suppressed=mailing.suppression.is_suppressed,
            on_progress=on_progress,
            stop=stop,
        )
        after = journal.state
    reason = stop_reason() if report.interrupted and not report.stopped_by else ""
    if reason:
        report = replace(report, interrupted=False, stopped_by=reason)
    # Closed, so on disk: only now may the witness learn what the journal holds.
    remember(plan, mailing, boot=boot)
    still_uncertain = known.uncertain - frozenset(after.sent) | after.uncertain
    delivery = DeliveryReport(
        plan=plan,
        send=report,
        uncertain=tuple(sorted(still_uncertain)),
        handed=tuple(sorted(known.handed | after.handed)),
        report_file=None,
        report_error="",
    )
    return _with_report_file(delivery)


def _calling_before_last(
    recipients: Iterator[Subscriber], planned: int, before_last: Callable[[], None]
) -> Iterator[Subscriber]:
    for count, subscriber in enumerate(recipients, start=1):
        if count == planned:
            before_last()
        yield subscriber


def remember(plan: SendPlan, mailing: Mailing, *, boot: str | None = None) -> None:
    """The witness learns what the issue's journal and the suppression list hold now: after
    a run, or when a plan finds nothing to send (a witness made for the first time)."""
    witness_journals(plan.journal.parent, [plan.journal], boot=boot)
    mailing.suppression.witness()


@dataclass(frozen=True)
class _Known:
    """What every journal of the issue says, together."""

    sent: dict[str, tuple[str, str]]  # key -> (list name, day) of the run that sent it
    failed: dict[str, str]
    uncertain: frozenset[str]
    handed: frozenset[str]  # among `sent`: cut off once the server had the whole message

    @classmethod
    def of(cls, states: list[JournalState]) -> _Known:
        sent: dict[str, tuple[str, str]] = {}
        failed: dict[str, str] = {}
        uncertain: set[str] = set()
        handed: set[str] = set()
        for state in states:
            for key, session in state.sent.items():
                if session >= 0 and session < len(state.sessions):
                    run = state.sessions[session]
                    sent.setdefault(key, (run.list_name, run.started[:10]))
                else:
                    sent.setdefault(key, ("", ""))
            failed.update(state.failed)
            uncertain |= state.uncertain
            handed |= state.handed
        return cls(
            sent=sent,
            failed={k: v for k, v in failed.items() if k not in sent},
            uncertain=frozenset(uncertain - sent.keys() - failed.keys()),
            handed=frozenset(handed),
        )

    def not_to_send(self, *, resend_uncertain: bool) -> frozenset[str]:
        done = frozenset(self.sent) | frozenset(self.failed)
        return done if resend_uncertain else done | self.uncertain


def _with_report_file(delivery: DeliveryReport) -> DeliveryReport:
    """The closing report as a text file beside the journal, for the office's records."""
    path = delivery.plan.journal.with_suffix(".report.txt")
    try:
        path.write_text(report_text(delivery), encoding="utf-8")
    except OSError as exc:
        return replace(delivery, report_error=exc.strerror or str(exc))
    return replace(delivery, report_file=path)


def note_in_report(delivery: DeliveryReport, note: str) -> None:
    """Add a line to the report file (when there is one): what the screen could not show."""
    if delivery.report_file is None:
        return
    try:
        with delivery.report_file.open("a", encoding="utf-8") as file:
            file.write(f"Note: {note}\n")
    except OSError:
        return  # the report on the screen and in the journal stands as it is


def report_text(delivery: DeliveryReport) -> str:
    """The whole truth about a run, as the report file and the screen tell it."""
    plan, send = delivery.plan, delivery.send
    if send.stopped_by:
        ended = _("no, stopped: {reason}").format(reason=send.stopped_by)
    elif send.interrupted:
        ended = _("no, interrupted")
    elif send.deferred:
        ended = _("no, the server asked to wait")
    else:
        ended = _("yes")
    # The tab-separated lines below the counts keep their English first word: a program may
    # read them.
    lines = [
        _("Issue: {issue} ({subject})").format(issue=plan.issue, subject=plan.subject),
        _("List: {list}").format(list=plan.list_name),
        _("Finished: {ended}").format(ended=ended),
        _("Sent: {count}").format(count=send.sent),
        _("Failed for good: {count}").format(count=len(send.failed)),
        _("Deferred (the server asked to wait; the next run sends them): {count}").format(
            count=len(send.deferred)
        ),
        _("Still to send (the same command sends them): {count}").format(
            count=delivery.still_to_send
        ),
        _("Retried: {count}").format(count=send.retried),
        _("Skipped (unsubscribed during the send): {count}").format(count=send.skipped),
        _("Uncertain (may have arrived; not sent again unless --resend-uncertain): {count}").format(
            count=len(delivery.uncertain)
        ),
        _("Handed to the server whole when a send was cut off (counted as sent): {count}").format(
            count=len(delivery.handed)
        ),
        *([_("Next: {step}").format(step=delivery.next_step)] if delivery.next_step else []),
        "",
        *(f"failed\t{failure.key}\t{failure.reply}" for failure in send.failed),
        *(f"deferred\t{failure.key}\t{failure.reply}" for failure in send.deferred),
        *(f"uncertain\t{key}" for key in delivery.uncertain),
        *(f"handed\t{key}" for key in delivery.handed),
    ]
    return "\n".join(lines) + "\n"
