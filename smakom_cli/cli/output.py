"""All terminal output goes through here, so every command speaks with one voice."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from smakom_cli.i18n import _

if TYPE_CHECKING:
    from pathlib import Path

    from smakom_cli.audience.subscribers import AudienceSummary
    from smakom_cli.audience.suppression import Reading
    from smakom_cli.compose.archive import ArchiveReport
    from smakom_cli.delivery.check import Finding
    from smakom_cli.delivery.mailing import OutboxReport
    from smakom_cli.delivery.preview import Preview
    from smakom_cli.delivery.sender import ProgressEvent, SendReport
    from smakom_cli.delivery.workflow import DeliveryReport, SendPlan
    from smakom_cli.doctor import DoctorReport
    from smakom_cli.returns.inbox import InboxReport
    from smakom_cli.returns.sync import SyncResult

console = Console(highlight=False)
_RATE_EVERY_SECONDS = 0.5
err_console = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """One red line on standard error: what went wrong and what to do."""
    err_console.print(Text.assemble(("Error: ", "bold red"), message), soft_wrap=True)


def warning(message: str) -> None:
    err_console.print(Text.assemble(("Warning: ", "yellow"), message), soft_wrap=True)


def success(message: str) -> None:
    console.print(Text.assemble(("✓ ", "green"), message), soft_wrap=True)


def info(message: str) -> None:
    console.print(Text(message), soft_wrap=True)


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, title: str = "") -> None:
    """A table on standard output; cells are shown as written, never read as Rich markup."""
    grid = Table(*columns, title=title or None, title_justify="left")
    for row in rows:
        grid.add_row(*(Text(cell) for cell in row))
    console.print(grid)


def show_findings(findings: Sequence[Finding]) -> None:
    """The check's findings, errors first, each with where to fix it."""
    for finding in sorted(findings, key=lambda f: f.severity != "error"):
        style = "bold red" if finding.severity == "error" else "yellow"
        label = "Error" if finding.severity == "error" else "Warning"
        console.print(
            Text.assemble((f"{label}: ", style), (f"{finding.where}: ", "bold"), finding.message),
            soft_wrap=True,
        )


def audience_line(audience: AudienceSummary) -> str:
    parts = [f"{audience.active} will receive it"]
    if audience.unsubscribed:
        parts.append(f"{audience.unsubscribed} unsubscribed")
    if audience.duplicates:
        parts.append(f"{audience.duplicates} duplicate(s) skipped")
    if audience.invalid:
        parts.append(f"{len(audience.invalid)} invalid row(s) left out")
    return f"{audience.rows} rows: " + ", ".join(parts)


def show_preview(preview: Preview) -> None:
    """Envelope, the plain text as its reader sees it, audience, sizes and findings."""
    envelope = Table.grid(padding=(0, 2))
    envelope.add_column(style="bold")
    envelope.add_column()
    envelope.add_row("From", Text(preview.sender))
    envelope.add_row("Reply-To", Text(preview.reply_to or "—"))
    envelope.add_row("To", Text(f"{preview.recipient.name} <{preview.recipient.address}>"))
    envelope.add_row("Subject", Text(preview.subject))
    envelope.add_row("Preheader", Text(preview.preheader or "—"))
    console.print(Panel(envelope, title="Envelope", title_align="left"))
    console.print(Panel(Text(preview.text), title="Plain text", title_align="left"))
    size = preview.html_bytes / 1024
    carried = "images embedded" if preview.image_mode == "embed" else "images linked"
    message = f"{_size(preview.message_bytes)} ({carried}), what each subscriber receives"
    console.print(Text.assemble(("Audience: ", "bold"), audience_line(preview.audience)))
    console.print(Text.assemble(("Message size: ", "bold"), message))
    console.print(Text.assemble(("HTML size: ", "bold"), f"{size:.1f} KB (Gmail clips at 102 KB)"))
    if preview.findings:
        show_findings(preview.findings)
    else:
        success("No problems found.")


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.1f} KB"


def show_outbox(report: OutboxReport, audience: AudienceSummary) -> None:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("Messages written", str(report.messages))
    summary.add_row("Skipped as unsubscribed", str(audience.unsubscribed))
    summary.add_row("Duplicates skipped", str(audience.duplicates))
    summary.add_row("Invalid rows left out", str(len(audience.invalid)))
    summary.add_row("Total size", f"{report.total_bytes / 1024 / 1024:.1f} MB")
    summary.add_row("Folder", Text(str(report.folder)))
    console.print(Panel(summary, title="Dry run: nothing was sent", title_align="left"))
    for row in audience.invalid:
        warning(f"line {row.line}: {row.reason}")


def show_plan(plan: SendPlan) -> None:
    """What a send to the list is about to do, before it is confirmed."""
    if plan.left_since:
        info(
            f"{plan.left_since} on {plan.list_name} unsubscribed with the link since the last "
            "sync; they are left out (and recorded in unsubscribed.csv when the send starts)."
        )
    for earlier in plan.earlier:
        info(
            f"{earlier.count} of these already got this issue from {earlier.list_name} on "
            f"{earlier.day}; they do not get it again."
        )
    if plan.already:
        info(f"{plan.already} on {plan.list_name} already got it; they are left out.")
    if plan.handed:
        info(
            f"{len(plan.handed)} message(s) reached the server whole just before an earlier "
            "send was cut off; its answer was never read, so they count as sent: "
            + ", ".join(plan.handed)
        )
    for failure in plan.failed_before:
        info(f"Refused for good by an earlier send, not sent again: {failure.key}: {failure.reply}")
    if plan.uncertain and not plan.resend_uncertain:
        warning(
            f"{len(plan.uncertain)} message(s) were in flight when an earlier send was cut off "
            "and may have arrived; they are not sent again. Use --resend-uncertain to send "
            "them anyway: " + ", ".join(plan.uncertain)
        )
    elif plan.uncertain:
        info(f"Sending again to the {len(plan.uncertain)} uncertain: " + ", ".join(plan.uncertain))


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
            f"`smakom send` with --resend-uncertain would send the {len(delivery.uncertain)} "
            "uncertain message(s) again (someone may then get the issue twice)."
        )


def _show_tally(
    report: SendReport, uncertain: Sequence[str], report_file: Path | None, report_error: str
) -> None:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("Sent", str(report.sent))
    summary.add_row("Failed for good", str(len(report.failed)))
    if report.deferred:
        summary.add_row("Deferred (sent by the next run)", str(len(report.deferred)))
    summary.add_row("Retried", str(report.retried))
    summary.add_row("Skipped (unsubscribed during the send)", str(report.skipped))
    if uncertain:
        summary.add_row("Uncertain (may have arrived)", str(len(uncertain)))
    if report_file:
        summary.add_row("Report", Text(str(report_file)))
    if report.resume_after is not None:
        title = "Send paused at the day's sending limit"
    elif report.stopped_by:
        title = "Send stopped by a fault"
    elif report.interrupted:
        title = "Send interrupted"
    else:
        title = "Send finished"
    console.print(Panel(summary, title=title, title_align="left"))
    for failure in report.failed:
        console.print(Text.assemble(("Failed: ", "bold red"), f"{failure.key}: {failure.reply}"))
    for failure in report.deferred:
        warning(f"{failure.key}: deferred by the server ({failure.reply}); the next run sends it.")
    for key in uncertain:
        warning(f"{key}: the message was in flight; it may or may not have arrived.")
    if report_error:
        warning(f"The report file could not be written ({report_error}).")


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
    task = progress.add_task("Sending", total=total, rate="")

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
            progress.update(task, rate=f"{speed * 60:.0f}/min" if speed else "")

    try:
        yield advance
    finally:
        if progress.live.is_started:
            progress.stop()


def show_archive(report: ArchiveReport, web_base_url: str) -> None:
    """What `smakom archive` wrote, and where it has to go for the mails' web links to work."""
    success(
        f"Web version written to {report.folder}: {len(report.pages)} issue page(s), "
        f"{report.index.name}, {report.feed.name} and {len(report.images)} image(s)."
    )
    if web_base_url:
        info(f"Upload everything in that folder to {web_base_url}/ as it is.")
    else:
        warning(
            "[newsletter] web_base_url is not set in smakom.toml, so the mails do not link "
            "to these pages."
        )


def show_unsubscribed(reading: Reading) -> None:
    """The suppression list as a table: who, since when, how and why."""
    if not reading.entries:
        info(f"Nobody has unsubscribed ({reading.path.name} lists nobody).")
        return
    grid = Table(title=f"{reading.path}: {len(reading.entries)} unsubscribed", title_justify="left")
    # An address is never cut short: it is what the office looks for in this table.
    grid.add_column("E-mail", overflow="fold")
    grid.add_column("Since", no_wrap=True)
    grid.add_column("Source", no_wrap=True)
    grid.add_column("Reason")
    for entry in reading.entries:
        grid.add_row(
            *(Text(cell) for cell in (entry.email, entry.since, entry.source, entry.reason))
        )
    console.print(grid)


def show_suppression_check(reading: Reading) -> None:
    """Each damaged line of the suppression list with what to do, or that it is sound."""
    name = reading.path.name
    for damage in reading.damage:
        where = f"{name} line {damage.line}" if damage.line else name
        console.print(
            Text.assemble(("Error: ", "bold red"), (f"{where}: ", "bold"), damage.problem),
            soft_wrap=True,
        )
        console.print(Text(f"  To repair: {damage.repair}"), soft_wrap=True)
    if reading.damage:
        info(
            f"{len(reading.damage)} damaged line(s) in {reading.path}. Nothing is sent to the "
            "list and nobody can be unsubscribed until they are fixed; run "
            "`smakom unsubscribed --check` again afterwards."
        )
    else:
        success(f"{name} is sound: {len(reading.entries)} address(es) unsubscribed.")


def show_sync(result: SyncResult, url: str) -> None:
    """What `smakom sync` brought home: each change, then one summary line."""
    for email in result.unsubscribed:
        success(f"{email} is now unsubscribed (through the unsubscribe link).")
    for email in result.resubscribed:
        success(f"{email} is subscribed again (pressed Ångra on the unsubscribe page).")
    for email in result.overruled:
        warning(
            f"{email} pressed Ångra on the unsubscribe page, but unsubscribed.csv has a newer "
            f"entry for it; left as it is (use `smakom resubscribe {email}` if they asked)."
        )
    changed = len(result.unsubscribed) + len(result.resubscribed)
    info(
        f"Synced with {url}: {changed} change(s), {result.unchanged} already recorded "
        f"in unsubscribed.csv."
    )
    if result.unresolved:
        warning(
            f"{result.unresolved} request(s) came from a genuine link whose subscriber is not "
            "on the subscriber list, in unsubscribed.csv or in sent/; they are kept and tried "
            "again at every sync (for instance after the list is imported again)."
        )


def show_inbox(report: InboxReport, files: Sequence[Path]) -> None:
    """What `smakom inbox` made of each new message, by kind, and where the report went."""
    from smakom_cli.returns.inbox import SECTIONS, row

    title = f"{report.host}: {report.folder}"
    if report.dry_run:
        title = f"Dry run, nothing was changed ({title})"
    grid = Table(title=title, title_justify="left")
    grid.add_column("Kind", no_wrap=True)
    grid.add_column("Address", overflow="fold")
    grid.add_column("Done")
    grid.add_column("Why")
    grid.add_column("Folder", overflow="fold")
    for kind, _label in SECTIONS:
        for item in (i for i in report.items if i.verdict.kind == kind):
            grid.add_row(kind, *(Text(cell) for cell in row(item)))
    if report.items:
        console.print(grid)
    counts = ", ".join(
        f"{label.lower()} {sum(i.verdict.kind == kind for i in report.items)}"
        for kind, label in SECTIONS
    )
    if report.items:
        info(f"{len(report.items)} new message(s): {counts}.")
    else:
        info(f"No new mail in {report.folder}.")
    if report.already_seen:
        info(f"{report.already_seen} message(s) were sorted before and left alone.")
    if report.finished_moves:
        info(f"{report.finished_moves} move(s) an earlier run had recorded were finished.")
    for path in files:
        info(f"Report: {path}")


def _doctor_labels() -> dict[str, tuple[str, str]]:
    return {
        "ok": (_("ok"), "green"),
        "warning": (_("warning"), "yellow"),
        "problem": (_("problem"), "bold red"),
    }


def show_doctor(report: DoctorReport) -> None:
    """One line per check: its status, what was checked, what was found and what to do."""
    labels = _doctor_labels()
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
    problems = ngettext("{count} problem", "{count} problems", report.problems).format(
        count=report.problems
    )
    warnings = ngettext("{count} warning", "{count} warnings", report.warnings).format(
        count=report.warnings
    )
    if report.problems:
        info(
            _(
                "{problems}, {warnings}: fix the problems before the first send, then run "
                "`smakom doctor` again."
            ).format(problems=problems, warnings=warnings)
        )
    elif report.warnings:
        info(_("No problems; {warnings} worth a look.").format(warnings=warnings))
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
