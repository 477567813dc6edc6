"""All terminal output goes through here, so every command speaks with one voice."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from smakom_cli.atomic import writing
from smakom_cli.i18n import N_, _, ngettext

if TYPE_CHECKING:
    from pathlib import Path

    from smakom_cli.audience.subscribers import AudienceSummary
    from smakom_cli.audience.suppression import Reading
    from smakom_cli.compose.archive import ArchiveReport
    from smakom_cli.delivery.check import Finding
    from smakom_cli.delivery.mailing import OutboxReport
    from smakom_cli.delivery.preview import Preview
    from smakom_cli.delivery.sender import ProgressEvent, SendReport
    from smakom_cli.delivery.watch import Rendering
    from smakom_cli.delivery.workflow import DeliveryReport, SendPlan
    from smakom_cli.doctor import DoctorReport
    from smakom_cli.returns.inbox import InboxReport, Sorted
    from smakom_cli.returns.sync import SyncResult


class _Standard:
    """A standard stream as it is at each write (a send swaps it for one that cannot fail,
    a test runner for its capture), named in a failed write: the operating system's error
    (`> /dev/full`, a full disk) names no file."""

    def __init__(self, name: str, shown: str) -> None:
        self._name = name
        self._shown = shown

    def _stream(self) -> IO[str]:
        stream: IO[str] = getattr(sys, self._name)
        return stream

    def write(self, text: str) -> int:
        with writing(self._shown):
            return self._stream().write(text)

    def flush(self) -> None:
        with writing(self._shown):
            self._stream().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream(), name)


console = Console(file=_Standard("stdout", _("the output")), highlight=False)  # type: ignore[arg-type]
_RATE_EVERY_SECONDS = 0.5
err_console = Console(file=_Standard("stderr", _("the error output")), highlight=False)  # type: ignore[arg-type]


@dataclass
class OutputLoss:
    """Why the terminal or pipe stopped taking output ("" while it takes it)."""

    problem: str = ""


class _Unfailing:
    """A standard stream that keeps going when what it writes to went away: a closed
    terminal (EIO), a full disk (`> /dev/full`), a pipe whose reader left (`| head -c 1`)."""

    def __init__(self, stream: IO[str], loss: OutputLoss) -> None:
        self._stream = stream
        self._loss = loss

    def write(self, text: str) -> int:
        if not self._loss.problem:
            try:
                self._stream.write(text)
            except OSError as exc:
                self._loss.problem = exc.strerror or str(exc)
        return len(text)

    def flush(self) -> None:
        if not self._loss.problem:
            try:
                self._stream.flush()
            except OSError as exc:
                self._loss.problem = exc.strerror or str(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def unfailing_output() -> Iterator[OutputLoss]:
    """Output that fails from here on is dropped and noted, never an error: once a send has
    started, what was sent decides how it ends, not whether anyone is still watching."""
    loss = OutputLoss()
    streams = sys.stdout, sys.stderr
    sys.stdout = _Unfailing(sys.stdout, loss)
    sys.stderr = _Unfailing(sys.stderr, loss)
    try:
        yield loss
    finally:
        sys.stdout, sys.stderr = streams
        if loss.problem:
            _discard_standard_streams()


def _discard_standard_streams() -> None:
    """Point the standard streams at the null device, so that what Python still writes as it
    exits (its buffers, a last line) cannot fail and change the exit code."""
    null = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(null, stream.fileno())
        except (OSError, ValueError):  # not a real file (a test runner's capture)
            continue
    os.close(null)


# Control characters other than the line break and the tab, as escapes: a message may quote
# a file or a mail (a NUL of a UTF-16 file, an escape sequence), which must not reach the
# terminal as they are.
_VISIBLE = {
    code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in "\n\t"
}


def _visible(text: str) -> str:
    return text.translate(_VISIBLE)


def error(message: str) -> None:
    """One red line on standard error: what went wrong and what to do."""
    err_console.print(Text.assemble((_("Error: "), "bold red"), _visible(message)), soft_wrap=True)


def warning(message: str) -> None:
    err_console.print(Text.assemble((_("Warning: "), "yellow"), _visible(message)), soft_wrap=True)


def success(message: str) -> None:
    console.print(Text.assemble(("✓ ", "green"), _visible(message)), soft_wrap=True)


def info(message: str) -> None:
    console.print(Text(_visible(message)), soft_wrap=True)


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, title: str = "") -> None:
    """A table on standard output; cells are shown as written, never read as Rich markup."""
    grid = Table(*columns, title=title or None, title_justify="left")
    for row in rows:
        grid.add_row(*(Text(_visible(cell)) for cell in row))
    console.print(grid)


def show_findings(findings: Sequence[Finding]) -> None:
    """The check's findings, errors first, each with where to fix it."""
    for finding in sorted(findings, key=lambda f: f.severity != "error"):
        style = "bold red" if finding.severity == "error" else "yellow"
        label = _("Error: ") if finding.severity == "error" else _("Warning: ")
        console.print(
            Text.assemble((label, style), (f"{finding.where}: ", "bold"), finding.message),
            soft_wrap=True,
        )


def show_rendering(rendering: Rendering) -> None:
    """One line for each rendering of `preview --watch`: its time and what the check found,
    or the mistake the page now shows."""
    from smakom_cli.i18n import _, ngettext

    stamp = time.strftime("%H:%M:%S")
    if rendering.error:
        err_console.print(
            Text.assemble((f"{stamp} ", "dim"), (_("Error: "), "bold red"), rendering.error),
            soft_wrap=True,
        )
        return
    errors = sum(finding.severity == "error" for finding in rendering.findings)
    warnings = len(rendering.findings) - errors
    found = ", ".join(
        [
            ngettext("{count} error", "{count} errors", errors).format(count=errors),
            ngettext("{count} warning", "{count} warnings", warnings).format(count=warnings),
        ]
    )
    line = _("Rendered in {milliseconds} ms: {found}").format(
        milliseconds=round(rendering.seconds * 1000), found=found
    )
    console.print(Text.assemble((f"{stamp} ", "dim"), line), soft_wrap=True)


def audience_line(audience: AudienceSummary) -> str:
    parts = [_("{count} will receive it").format(count=audience.active)]
    if audience.unsubscribed:
        parts.append(_("{count} unsubscribed").format(count=audience.unsubscribed))
    if audience.duplicates:
        count = audience.duplicates
        parts.append(
            ngettext("{count} duplicate skipped", "{count} duplicates skipped", count).format(
                count=count
            )
        )
    if audience.invalid:
        count = len(audience.invalid)
        parts.append(
            ngettext("{count} invalid row left out", "{count} invalid rows left out", count).format(
                count=count
            )
        )
    rows = ngettext("{count} row", "{count} rows", audience.rows).format(count=audience.rows)
    return _("{rows}: {parts}").format(rows=rows, parts=", ".join(parts))


def show_preview(preview: Preview) -> None:
    """Envelope, the plain text as its reader sees it, audience, sizes and findings."""
    envelope = Table.grid(padding=(0, 2))
    envelope.add_column(style="bold")
    envelope.add_column()
    envelope.add_row(_("From"), Text(preview.sender))
    envelope.add_row(_("Reply-To"), Text(preview.reply_to or "—"))
    envelope.add_row(_("To"), Text(f"{preview.recipient.name} <{preview.recipient.address}>"))
    envelope.add_row(_("Subject"), Text(preview.subject))
    envelope.add_row(_("Preheader"), Text(preview.preheader or "—"))
    console.print(Panel(envelope, title=_("Envelope"), title_align="left"))
    console.print(Panel(Text(preview.text), title=_("Plain text"), title_align="left"))
    size = preview.html_bytes / 1024
    if preview.image_mode == "embed":
        message = _("{size} (images embedded), what each subscriber receives")
    else:
        message = _("{size} (images linked), what each subscriber receives")
    message = message.format(size=_size(preview.message_bytes))
    html_size = _("{size:.1f} KB (Gmail clips at 102 KB)").format(size=size)
    console.print(Text.assemble((_("Audience: "), "bold"), audience_line(preview.audience)))
    show_left_out(preview.audience)
    console.print(Text.assemble((_("Message size: "), "bold"), message))
    console.print(Text.assemble((_("HTML size: "), "bold"), html_size))
    if preview.findings:
        show_findings(preview.findings)
    else:
        success(_("No problems found."))


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.1f} KB"


def show_outbox(report: OutboxReport, audience: AudienceSummary) -> None:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row(_("Messages written"), str(report.messages))
    summary.add_row(_("Skipped as unsubscribed"), str(audience.unsubscribed))
    summary.add_row(_("Duplicates skipped"), str(audience.duplicates))
    summary.add_row(_("Invalid rows left out"), str(len(audience.invalid)))
    summary.add_row(_("Total size"), _size(report.total_bytes))
    summary.add_row(_("Folder"), Text(str(report.folder)))
    console.print(Panel(summary, title=_("Dry run: nothing was sent"), title_align="left"))
    show_left_out(audience)


ROWS_SHOWN = 5


def show_left_out(audience: AudienceSummary) -> None:
    """The first few rows a send leaves out or sends once, by line, and how to see them all:
    the same in the preview, the check and the dry run."""
    lines = [
        _("line {line}: {reason}").format(line=row.line, reason=row.reason)
        for row in audience.invalid[:ROWS_SHOWN]
    ]
    lines += [
        _(
            "line {line}: {address} is on the list already (line {first}); it gets one message."
        ).format(line=row.line, address=row.address, first=row.first_line)
        for row in audience.duplicate_rows[: ROWS_SHOWN - len(lines)]
    ]
    for line in lines:
        warning(line)
    more = len(audience.invalid) + len(audience.duplicate_rows) - len(lines)
    if more:
        warning(
            ngettext(
                "and {count} more row like these: `smakom subscribers` lists every one.",
                "and {count} more rows like these: `smakom subscribers` lists every one.",
                more,
            ).format(count=more)
        )


def show_plan(plan: SendPlan) -> None:
    """What a send to the list is about to do, before it is confirmed."""
    if plan.left_since:
        info(
            _(
                "{count} on {list} unsubscribed with the link since the last sync; they are "
                "left out (and recorded in unsubscribed.csv when the send starts)."
            ).format(count=plan.left_since, list=plan.list_name)
        )
    for earlier in plan.earlier:
        info(
            _(
                "{count} of these already got this issue from {list} on {day}; they do not get "
                "it again."
            ).format(count=earlier.count, list=earlier.list_name, day=earlier.day)
        )
    if plan.already:
        info(
            _("{count} on {list} already got it; they are left out.").format(
                count=plan.already, list=plan.list_name
            )
        )
    if plan.handed:
        info(
            ngettext(
                "{count} message reached the server whole just before an earlier send was cut "
                "off; its answer was never read, so it counts as sent: {keys}",
                "{count} messages reached the server whole just before an earlier send was cut "
                "off; its answer was never read, so they count as sent: {keys}",
                len(plan.handed),
            ).format(count=len(plan.handed), keys=", ".join(plan.handed))
        )
    for failure in plan.failed_before:
        info(
            _("Refused for good by an earlier send, not sent again: {key}: {reply}").format(
                key=failure.key, reply=failure.reply
            )
        )
    if plan.uncertain and not plan.resend_uncertain:
        warning(
            ngettext(
                "{count} message was in flight when an earlier send was cut off and may have "
                "arrived; it is not sent again. Use --resend-uncertain to send it anyway: {keys}",
                "{count} messages were in flight when an earlier send was cut off and may have "
                "arrived; they are not sent again. Use --resend-uncertain to send them anyway: "
                "{keys}",
                len(plan.uncertain),
            ).format(count=len(plan.uncertain), keys=", ".join(plan.uncertain))
        )
    elif plan.uncertain:
        info(
            _("Sending again to the {count} uncertain: {keys}").format(
                count=len(plan.uncertain), keys=", ".join(plan.uncertain)
            )
        )


def show_send_report(report: SendReport, report_file: Path | None) -> None:
    """The tally of a proof."""
    _show_tally(report, report.uncertain, report_file, "")


def show_delivery(delivery: DeliveryReport) -> None:
    """The tally of a send to the list, with everything still open in its journal."""
    _show_tally(delivery.send, delivery.uncertain, delivery.report_file, delivery.report_error)
    if delivery.send.resume_after is not None:
        warning(delivery.send.stopped_by)  # a limit reached, not a fault
    elif delivery.send.stopped_by:
        error(delivery.send.stopped_by)
    if delivery.next_step:
        info(delivery.next_step)
    if delivery.uncertain:
        info(
            ngettext(
                "`smakom send` with --resend-uncertain would send the {count} uncertain message "
                "again (someone may then get the issue twice).",
                "`smakom send` with --resend-uncertain would send the {count} uncertain messages "
                "again (someone may then get the issue twice).",
                len(delivery.uncertain),
            ).format(count=len(delivery.uncertain))
        )


def _show_tally(
    report: SendReport, uncertain: Sequence[str], report_file: Path | None, report_error: str
) -> None:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row(_("Sent"), str(report.sent))
    summary.add_row(_("Failed for good"), str(len(report.failed)))
    if report.deferred:
        summary.add_row(_("Deferred (sent by the next run)"), str(len(report.deferred)))
    summary.add_row(_("Retried"), str(report.retried))
    summary.add_row(_("Skipped (unsubscribed during the send)"), str(report.skipped))
    if uncertain:
        summary.add_row(_("Uncertain (may have arrived)"), str(len(uncertain)))
    if report_file:
        summary.add_row(_("Report"), Text(str(report_file)))
    if report.resume_after is not None:
        title = _("Send paused at the day's sending limit")
    elif report.stopped_by:
        title = _("Send stopped by a fault")
    elif report.interrupted:
        title = _("Send interrupted")
    elif report.deferred:
        title = _("Send not finished: the server asked to wait")
    else:
        title = _("Send finished")
    console.print(Panel(summary, title=title, title_align="left"))
    for failure in report.failed:
        console.print(Text.assemble((_("Failed: "), "bold red"), f"{failure.key}: {failure.reply}"))
    for failure in report.deferred:
        warning(
            _("{key}: deferred by the server ({reply}); the next run sends it.").format(
                key=failure.key, reply=failure.reply
            )
        )
    for key in uncertain:
        warning(
            _("{key}: the message was in flight; it may or may not have arrived.").format(key=key)
        )
    if report_error:
        warning(_("The report file could not be written ({reason}).").format(reason=report_error))


@contextmanager
def send_progress(total: int) -> Iterator[Callable[[ProgressEvent], None]]:
    """A progress bar with rate and time left; yields the callback the sender calls.

    The bar appears with the first outcome, so a refused login is not shown under a bar.
    """
    # Only a send draws a bar: a preview or dry run does not import it.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    progress = Progress(*columns, console=console, transient=False)
    task = progress.add_task(_("Sending"), total=total, rate="")

    rate_shown = [0.0]  # when the rate was last worked out

    def advance(event: ProgressEvent) -> None:
        progress.start()
        if event.final:
            progress.advance(task)
        # Rich's speed walks every recent sample: twice a second, not once per message (it
        # was a tenth of the GIL's time in a fast send, slowing the sending thread).
        now = time.monotonic()
        if now - rate_shown[0] >= _RATE_EVERY_SECONDS:
            rate_shown[0] = now
            speed = progress.tasks[0].speed
            rate = _("{count:.0f}/min").format(count=speed * 60) if speed else ""
            progress.update(task, rate=rate)

    try:
        yield advance
    finally:
        if progress.live.is_started:
            progress.stop()


def show_archive(report: ArchiveReport, web_base_url: str) -> None:
    """What `smakom archive` wrote, and where it has to go for the mails' web links to work."""
    pages = ngettext("{count} issue page", "{count} issue pages", len(report.pages))
    images = ngettext("{count} image", "{count} images", len(report.images))
    success(
        _("Web version written to {folder}: {pages}, {index}, {feed} and {images}.").format(
            folder=report.folder,
            pages=pages.format(count=len(report.pages)),
            index=report.index.name,
            feed=report.feed.name,
            images=images.format(count=len(report.images)),
        )
    )
    if web_base_url:
        info(_("Upload everything in that folder to {url}/ as it is.").format(url=web_base_url))
    else:
        warning(
            _(
                "[newsletter] web_base_url is not set in smakom.toml, so the mails do not link "
                "to these pages."
            )
        )


def show_unsubscribed(reading: Reading) -> None:
    """The suppression list as a table: who, since when, how and why."""
    if not reading.entries:
        info(_("Nobody has unsubscribed ({file} lists nobody).").format(file=reading.path.name))
        return
    title = _("{file}: {count} unsubscribed").format(file=reading.path, count=len(reading.entries))
    grid = Table(title=title, title_justify="left")
    # An address is never cut short: it is what the office looks for in this table.
    grid.add_column(_("E-mail"), overflow="fold")
    grid.add_column(_("Since"), no_wrap=True)
    grid.add_column(_("Source"), no_wrap=True)
    grid.add_column(_("Reason"))
    for entry in reading.entries:
        grid.add_row(
            *(
                Text(cell)
                for cell in (entry.email, entry.since, _source(entry.source), entry.reason)
            )
        )
    console.print(grid)


# How each way out is named in the table (the file keeps the machine word).
_SOURCES = {
    "command": N_("command"),
    "file": N_("file"),
    "one-click": N_("one-click"),
    "web": N_("web"),
    "mail": N_("mail"),
    "bounce": N_("bounce"),
}


def _source(source: str) -> str:
    return _(_SOURCES[source]) if source in _SOURCES else source


def show_suppression_check(reading: Reading) -> None:
    """Each damaged line of the suppression list with what to do, or that it is sound."""
    name = reading.path.name
    for damage in reading.damage:
        where = _("{file} line {line}").format(file=name, line=damage.line) if damage.line else name
        console.print(
            Text.assemble((_("Error: "), "bold red"), (f"{where}: ", "bold"), damage.problem),
            soft_wrap=True,
        )
        console.print(Text(_("  To repair: {how}").format(how=damage.repair)), soft_wrap=True)
    for note in reading.notes:
        console.print(
            Text.assemble(
                (_("Note: "), "bold yellow"),
                (_("{file} line {line}").format(file=name, line=note.line) + ": ", "bold"),
                note.problem,
            ),
            soft_wrap=True,
        )
        console.print(Text("  " + note.repair), soft_wrap=True)
    if reading.damage:
        info(
            ngettext(
                "{count} damaged line in {file}. Nothing is sent to the list and nobody can be "
                "unsubscribed until it is fixed; run `smakom unsubscribed --check` again "
                "afterwards.",
                "{count} damaged lines in {file}. Nothing is sent to the list and nobody can be "
                "unsubscribed until they are fixed; run `smakom unsubscribed --check` again "
                "afterwards.",
                len(reading.damage),
            ).format(count=len(reading.damage), file=reading.path)
        )
    else:
        success(
            ngettext(
                "{file} is sound: {count} address unsubscribed.",
                "{file} is sound: {count} addresses unsubscribed.",
                len(reading.entries),
            ).format(file=name, count=len(reading.entries))
        )


def show_sync(result: SyncResult) -> None:
    """What `smakom sync` brought home: each change, then one summary line."""
    for email in result.unsubscribed:
        success(
            _("{email} is now unsubscribed (through the unsubscribe link).").format(email=email)
        )
    for email in result.resubscribed:
        success(
            _("{email} is subscribed again (pressed Ångra on the unsubscribe page).").format(
                email=email
            )
        )
    for email in result.overruled:
        warning(
            _(
                "{email} pressed Ångra on the unsubscribe page, but unsubscribed.csv has a newer "
                "entry for it; left as it is (use `smakom resubscribe {email}` if they asked)."
            ).format(email=email)
        )
    changed = len(result.unsubscribed) + len(result.resubscribed)
    changes = ngettext("{count} change", "{count} changes", changed).format(count=changed)
    info(
        _("Synced with {url}: {changes}, {count} already recorded in unsubscribed.csv.").format(
            url=result.service, changes=changes, count=result.unchanged
        )
    )
    if result.unresolved:
        warning(
            ngettext(
                "{count} request came from a genuine link whose subscriber is not on the "
                "subscriber list, in unsubscribed.csv or in sent/; it is kept and tried again at "
                "every sync (for instance after the list is imported again).",
                "{count} requests came from a genuine link whose subscriber is not on the "
                "subscriber list, in unsubscribed.csv or in sent/; they are kept and tried again "
                "at every sync (for instance after the list is imported again).",
                result.unresolved,
            ).format(count=result.unresolved)
        )
    if result.refused_undos:
        warning(
            ngettext(
                "{count} resubscribe was not made with the page's one-time undo token (a service "
                "from before undo tokens); left out: a reader who wants the newsletter again can "
                "ask, and `smakom resubscribe ADDRESS` records it.",
                "{count} resubscribes were not made with the page's one-time undo token (a "
                "service from before undo tokens); left out: a reader who wants the newsletter "
                "again can ask, and `smakom resubscribe ADDRESS` records it.",
                result.refused_undos,
            ).format(count=result.refused_undos)
        )


INBOX_SECTIONS: tuple[tuple[str, str], ...] = (
    ("hard", N_("Hard bounces")),
    ("soft", N_("Soft bounces")),
    ("blocked", N_("Sending blocked")),
    ("complaint", N_("Spam complaints")),
    ("stranger", N_("Bounces and complaints about addresses never sent the newsletter")),
    ("unsubscribe", N_("Unsubscribe requests")),
    ("unreadable", N_("Unreadable")),
    ("auto-reply", N_("Auto-replies")),
    ("unknown", N_("Other mail")),
)


def inbox_report_lines(report: InboxReport) -> Iterator[str]:
    """The report as plain text lines: one section per kind, a line per message."""
    mode = _("dry run, nothing changed") if report.dry_run else _("sorted")
    yield _("smakom inbox: {host}, folder {folder} ({mode})").format(
        host=report.host, folder=report.folder, mode=mode
    )
    yield _(
        "New messages: {count}; seen before: {seen}; moves finished from an earlier run: {finished}"
    ).format(count=len(report.items), seen=report.already_seen, finished=report.finished_moves)
    yield _inbox_totals(report)
    if report.interrupted:
        yield _("Stopped early: {reason}").format(reason=report.interrupted)
    for kind, title in INBOX_SECTIONS:
        items = [i for i in report.items if _inbox_section(i) == kind]
        yield ""
        yield f"{_(title)}: {len(items)}"
        for item in items:
            yield "\t".join(_inbox_row(item))


def _inbox_section(item: Sorted) -> str:
    """A bounce or complaint about someone never sent the newsletter is a stranger's, apart
    from the readers'."""
    if item.verdict.kind in ("hard", "soft", "complaint") and item.action == "leave":
        return "stranger"
    return item.verdict.kind


def _inbox_totals(report: InboxReport) -> str:
    unsubscribed = sum(len(item.suppressed) for item in report.items)
    moved = sum(item.action == "move" for item in report.items)
    left = len(report.items) - moved
    if report.dry_run:
        text = _(
            "Totals: would unsubscribe {unsubscribed}; would move {moved}; "
            "would leave {left} for a person"
        )
    else:
        text = _("Totals: unsubscribed {unsubscribed}; moved {moved}; left {left} for a person")
    return text.format(unsubscribed=unsubscribed, moved=moved, left=left)


def _inbox_row(item: Sorted) -> tuple[str, str, str, str]:
    """Addresses, what was done, why (the server's reply, or date and subject of what a
    person must read), and where it went."""
    from smakom_cli.returns.sorting import bounce_reason

    verdict = item.verdict
    addresses = ", ".join(item.addresses or verdict.addresses) or verdict.sender or "?"
    where = item.to if item.action == "move" else _("stays in place")
    if verdict.kind == "unreadable" or item.action == "leave":
        when = f"{verdict.date:%Y-%m-%d %H:%M} " if verdict.date else ""
        why = when + (verdict.subject or _("(no subject)"))
    elif verdict.kind in ("hard", "soft", "blocked"):
        why = bounce_reason(verdict)
    else:
        why = verdict.reason
    effect = verdict.reason if verdict.kind == "unreadable" else item.effect
    if item.repeat:
        effect = _("{effect} (sorted before, as another copy)").format(effect=effect)
    return addresses, effect, why, where


def show_inbox(report: InboxReport) -> None:
    """What `smakom inbox` made of each new message, by kind; its report written where the
    core says, with each issue's bounces."""
    files = list(report.bounce_files)
    if report.report_file is not None:
        text = "\n".join(inbox_report_lines(report)) + "\n"
        with writing(report.report_file):
            report.report_file.write_text(text, encoding="utf-8")
        files.insert(0, report.report_file)
    title = f"{report.host}: {report.folder}"
    if report.dry_run:
        title = _("Dry run, nothing was changed ({where})").format(where=title)
    grid = Table(title=title, title_justify="left")
    grid.add_column(_("Kind"), no_wrap=True)
    grid.add_column(_("Address"), overflow="fold")
    grid.add_column(_("Done"))
    grid.add_column(_("Why"))
    grid.add_column(_("Folder"), overflow="fold")
    for kind, _label in INBOX_SECTIONS:
        for item in (i for i in report.items if _inbox_section(i) == kind):
            grid.add_row(
                _(_INBOX_KINDS.get(item.verdict.kind, item.verdict.kind)),
                *(Text(cell) for cell in _inbox_row(item)),
            )
    if report.items:
        console.print(grid)
    counts = ", ".join(
        f"{_(label).lower()} {sum(_inbox_section(i) == kind for i in report.items)}"
        for kind, label in INBOX_SECTIONS
    )
    if report.items:
        info(
            ngettext(
                "{count} new message: {counts}.",
                "{count} new messages: {counts}.",
                len(report.items),
            ).format(count=len(report.items), counts=counts)
        )
        info(_inbox_totals(report))
    else:
        info(_("No new mail in {folder}.").format(folder=report.folder))
    if report.already_seen:
        info(
            ngettext(
                "{count} message was sorted before and left alone.",
                "{count} messages were sorted before and left alone.",
                report.already_seen,
            ).format(count=report.already_seen)
        )
    if report.finished_moves:
        info(
            ngettext(
                "{count} move an earlier run had recorded was finished.",
                "{count} moves an earlier run had recorded were finished.",
                report.finished_moves,
            ).format(count=report.finished_moves)
        )
    for path in files:
        info(_("Report: {file}").format(file=path))


# The kinds of mail as the inbox table names them (the kind itself is a machine field).
_INBOX_KINDS = {
    "hard": N_("hard"),
    "soft": N_("soft"),
    "blocked": N_("blocked"),
    "complaint": N_("complaint"),
    "unsubscribe": N_("unsubscribe"),
    "unreadable": N_("unreadable"),
    "auto-reply": N_("auto-reply"),
    "unknown": N_("unknown"),
}


_DOCTOR_LABELS = {
    "ok": (N_("ok"), "green"),
    "warning": (N_("warning"), "yellow"),
    "problem": (N_("problem"), "bold red"),
}


def show_doctor(report: DoctorReport) -> None:
    """One line per check: its status, what was checked, what was found and what to do."""
    labels = {status: (_(label), style) for status, (label, style) in _DOCTOR_LABELS.items()}
    width = max(len(label) for label, _style in labels.values())
    for finding in report.findings:
        label, style = labels[finding.status]
        todo = f" → {finding.todo}" if finding.todo and finding.status != "ok" else ""
        console.print(
            Text.assemble(
                (label.ljust(width + 1), style), (f"{finding.what}: ", "bold"), finding.found, todo
            ),
            soft_wrap=True,
        )
    if report.problems:
        problems = ngettext("{count} problem", "{count} problems", report.problems)
        warnings = ngettext("{count} warning", "{count} warnings", report.warnings)
        info(
            _(
                "{problems}, {warnings}: fix the problems before the first send, then run "
                "`smakom doctor` again."
            ).format(
                problems=problems.format(count=report.problems),
                warnings=warnings.format(count=report.warnings),
            )
        )
    elif report.warnings:
        info(
            ngettext(
                "No problems; {count} warning worth a look.",
                "No problems; {count} warnings worth a look.",
                report.warnings,
            ).format(count=report.warnings)
        )
    else:
        success(_("Everything checked is ready."))
    if report.offline:
        info(
            _(
                "Offline: the sign-in, the sender domain, the service and the inbox were not "
                "checked."
            )
        )


def confirm(question: str) -> bool:
    """`question` [y/N] in the interface language; Enter is no, and "y" and "yes" always work."""
    yes = {"y", "yes", _("y"), _("yes")}
    no = {"", "n", "no", _("n"), _("no")}
    while True:
        asked = _("{question} [y/N]").format(question=question)
        answer = typer.prompt(asked, default="", show_default=False)
        if answer.strip().lower() in yes:
            return True
        if answer.strip().lower() in no:
            return False
        error(_("Answer {yes} or {no}.").format(yes=_("y"), no=_("n")))
