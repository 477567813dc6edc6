"""`smakom send`: a dry run, a proof, or the issue to the list."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smakom_cli.cli.app import (
    IssueArgument,
    SubscribersOption,
    app,
    output,
    usage_error,
)
from smakom_cli.cli.common import (
    exit_if_a_send_would_stop,
    make_unsubscribe_secret,
    prepare,
    warn_if_not_synced,
    with_secret,
)
from smakom_cli.cli.signin import (
    login_source,
)
from smakom_cli.errors import ExitCode, SmakomError
from smakom_cli.i18n import _

if TYPE_CHECKING:
    from collections.abc import Callable

    from smakom_cli.delivery.mailing import Mailing
    from smakom_cli.delivery.smtp import Login
    from smakom_cli.delivery.workflow import DeliveryReport
    from smakom_cli.returns.sync import SyncBatch


_SEND_HELP = "\n\n".join(
    (
        _("Send the issue: a dry run to files, a proof to yourself, or to every subscriber."),
        _("Exit codes: {codes}.").format(
            codes="; ".join(f"{code.value} {code.meaning}" for code in ExitCode)
        ),
    )
)


@app.command(help=_SEND_HELP)
def send(
    ctx: typer.Context,
    issue: IssueArgument,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help=_("Write every message to the outbox folder; send nothing.")
        ),
    ] = False,
    outbox: Annotated[
        Path | None,
        typer.Option(
            "--outbox", help=_("Folder for --dry-run (default: outbox/<issue> in the folder).")
        ),
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help=_("Send a proof to this address only (repeatable).")),
    ] = None,
    as_email: Annotated[
        str | None,
        typer.Option("--as", help=_("Personalise a proof (--to) as this subscriber.")),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help=_("Do not ask for confirmation."))] = False,
    force: Annotated[
        bool, typer.Option("--force", help=_("Send even when `smakom check` finds errors."))
    ] = False,
    resend_uncertain: Annotated[
        bool,
        typer.Option(
            "--resend-uncertain",
            help=_("Also send to those whose message was in flight when a send was cut off."),
        ),
    ] = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again", help=_("Send the issue again to everyone, even those who already got it.")
        ),
    ] = False,
    no_sync: Annotated[
        bool,
        typer.Option(
            "--no-sync",
            help=_(
                "Send without first fetching who unsubscribed with the one-click link "
                "(when the service cannot be reached)."
            ),
        ),
    ] = False,
    subscribers: SubscribersOption = None,
) -> None:
    _refuse_conflicts(
        dry_run=dry_run,
        outbox=outbox is not None,
        to=bool(to),
        as_email=as_email is not None,
        yes=yes,
        resend_uncertain=resend_uncertain,
        again=again,
        no_sync=no_sync,
    )
    from smakom_cli.delivery.mailing import write_outbox

    mailing = prepare(ctx, issue, subscribers, sending=not dry_run)
    config = mailing.config
    if dry_run:
        folder = outbox or config.outbox_dir / mailing.issue.slug
        report = write_outbox(mailing, folder)
        output.show_outbox(report, mailing.audience())
        findings = mailing.check()
        output.show_findings(findings)
        warn_if_not_synced(config)
        exit_if_a_send_would_stop(findings)
        return
    login = login_source(config)
    if to:
        make_unsubscribe_secret(config)
        _send_proofs(with_secret(mailing), to, as_email, login)
        return
    _send_to_list(
        mailing,
        login,
        yes=yes,
        force=force,
        resend_uncertain=resend_uncertain,
        again=again,
        sync=not no_sync,
    )


def _refuse_conflicts(**given: bool) -> None:
    """Options that cannot mean anything together are refused, never silently ignored."""
    pairs = [
        ("to", "dry_run", "--to sends a proof; --dry-run sends nothing. Use one of them."),
        ("outbox", None, "--outbox is the folder of a --dry-run; add --dry-run."),
        ("as_email", "no_to", "--as personalises a proof: give --to ADDRESS as well."),
        ("again", "resend_uncertain", "--again already sends to everyone, the uncertain too."),
    ]
    given = given | {"no_to": not given["to"]}
    for first, second, sentence in pairs:
        if given[first] and (given[second] if second else not given["dry_run"]):
            usage_error(sentence)
    list_only = ("again", "resend_uncertain", "yes", "no_sync")
    for name in list_only:
        if given[name] and (given["dry_run"] or given["to"]):
            option = "--" + name.replace("_", "-")
            usage_error(
                _("{option} is for a send to the list, not a dry run or a proof.").format(
                    option=option
                )
            )


def _send_proofs(
    mailing: Mailing, to: list[str], as_email: str | None, login: Callable[[], Login | None]
) -> None:
    from smakom_cli.audience.subscribers import parse_address
    from smakom_cli.delivery.sender import send_messages

    addresses = [parse_address(address).send_to for address in to]
    sample = mailing.sample(as_email) if as_email else None
    with output.unfailing_output():
        report = send_messages(
            mailing.proofs(addresses, sample),
            mailing.config.smtp,
            envelope_from=mailing.config.sender.email,
            login=login,
            journal=None,
            is_suppressed=lambda _key: False,
        )
        output.show_send_report(report, None)
    if report.stopped_by or report.interrupted or report.deferred:
        raise typer.Exit(ExitCode.RESUMABLE)
    if not report.complete:
        raise typer.Exit(ExitCode.FAILED)


def _send_to_list(
    mailing: Mailing,
    login: Callable[[], Login | None],
    *,
    yes: bool,
    force: bool,
    resend_uncertain: bool,
    again: bool,
    sync: bool,
) -> None:
    """Plan, show, confirm, run, report: nothing is written before the confirmation."""
    from smakom_cli.delivery.workflow import holding_issue

    with holding_issue(mailing):
        _send_held(
            mailing,
            login,
            yes=yes,
            force=force,
            resend_uncertain=resend_uncertain,
            again=again,
            sync=sync,
        )


def _send_held(
    mailing: Mailing,
    login: Callable[[], Login | None],
    *,
    yes: bool,
    force: bool,
    resend_uncertain: bool,
    again: bool,
    sync: bool,
) -> None:
    from smakom_cli.delivery.workflow import note_in_report, plan_send, run_send

    batch = _fetch_unsubscribes(mailing) if sync else None
    findings = mailing.check()
    plan = plan_send(
        mailing,
        findings=findings,
        force=force,
        resend_uncertain=resend_uncertain,
        again=again,
        leave_out=_pending_unsubscribes(batch),
    )
    if any(finding.severity == "error" for finding in plan.findings):
        output.show_findings(plan.findings)
    if plan.refusal:
        raise SmakomError(plan.refusal)
    output.show_plan(plan)
    if plan.nothing_to_send:
        output.success(plan.nothing_to_send_reason)
        if plan.uncertain:  # still for someone to decide: --resend-uncertain, or leave them
            raise typer.Exit(ExitCode.FAILED)
        return
    if not yes and not output.confirm(plan.question):
        raise typer.Abort()
    # From here the exit code tells what was sent, even once the terminal or pipe is gone.
    with output.unfailing_output() as lost:
        if batch is not None:
            from smakom_cli.returns.sync import apply_events, service_urls

            urls = service_urls(mailing.config)
            output.show_sync(apply_events(mailing.config, batch), urls.events if urls else "")
        make_unsubscribe_secret(mailing.config)
        mailing = with_secret(mailing)
        with output.send_progress(plan.pending) as progress:
            delivery = _interruptible(
                lambda stop: run_send(plan, mailing, login=login, on_progress=progress, stop=stop)
            )
        output.show_delivery(delivery)
    if lost.problem:
        note_in_report(delivery, f"the output went away during the send ({lost.problem}).")
    if delivery.resumable:
        raise typer.Exit(ExitCode.RESUMABLE)
    if delivery.send.failed or delivery.uncertain:
        raise typer.Exit(ExitCode.FAILED)


def _fetch_unsubscribes(mailing: Mailing) -> SyncBatch | None:
    """The one-click service's new events, fetched (not yet written) before a send plans.

    Nobody is mailed on stale data: a service that cannot be reached stops the send, unless
    --no-sync says to go on without it.
    """
    from smakom_cli.returns.sync import fetch_events, service_urls
    from smakom_cli.signin.credentials import SERVICE_KEY_VARIABLE, service_key

    config = mailing.config
    if service_urls(config) is None or mailing.secret is None:
        return None
    try:
        key = service_key(config.list_id, os.environ)
    except SmakomError as exc:  # no keyring on this machine
        raise SmakomError(
            _(
                "{exc} The one-click service's sync key can come from "
                "{service_key_variable}; or send with --no-sync."
            ).format(exc=exc, service_key_variable=SERVICE_KEY_VARIABLE)
        ) from None
    if key is None:
        raise SmakomError(
            _(
                "no sync key for the one-click unsubscribe service: run `smakom login "
                "--service-key` (or set {service_key_variable}), or send with "
                "--no-sync."
            ).format(service_key_variable=SERVICE_KEY_VARIABLE)
        )
    try:
        return fetch_events(config, key, mailing.secret, lists=[mailing.subscribers_path])
    except SmakomError as exc:
        raise SmakomError(
            _("{exc} Nobody was mailed; send with --no-sync to send without it.").format(exc=exc)
        ) from None


def _pending_unsubscribes(batch: SyncBatch | None) -> frozenset[str]:
    from smakom_cli.returns.sync import pending_unsubscribes

    return pending_unsubscribes(batch) if batch is not None else frozenset()


# Ctrl-C, `kill` (cron, systemd) and closing the terminal all stop a send the same way.
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


# A crash between the journal's line before the final "." and its line once the "." is handed
# to the system leaves a message uncertain. Python hands the interpreter between threads every
# 5 ms by default, so the sending thread could wait that long there, behind the progress
# display or the message builder; during a send it waits at most half a millisecond.
_SWITCH_SECONDS = 0.0005


def _interruptible(run: Callable[[threading.Event], DeliveryReport]) -> DeliveryReport:
    """A stop signal asks the send to stop after the message in progress, instead of killing it."""
    stop = threading.Event()
    previous = {number: signal.getsignal(number) for number in _STOP_SIGNALS}
    for number in _STOP_SIGNALS:
        signal.signal(number, lambda _signum, _frame: stop.set())
    switch = sys.getswitchinterval()
    sys.setswitchinterval(_SWITCH_SECONDS)
    try:
        return run(stop)
    finally:
        sys.setswitchinterval(switch)
        for number, handler in previous.items():
            signal.signal(number, handler)
