"""`smakom send`: a dry run, a proof, or the issue to the list."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smakom_cli.cli.app import IssueArgument, SubscribersOption, app, output, usage_error
from smakom_cli.cli.common import (
    exit_if_a_send_would_stop,
    prepare,
    say_key_made,
    signin,
    warn_if_not_synced,
)
from smakom_cli.errors import ExitCode, SmakomError
from smakom_cli.i18n import _

if TYPE_CHECKING:
    from collections.abc import Callable

    from smakom_cli.cli.output import OutputLoss
    from smakom_cli.delivery.mailing import Mailing
    from smakom_cli.delivery.send import SendOptions, Starting
    from smakom_cli.delivery.sender import ProgressEvent
    from smakom_cli.delivery.workflow import SendPlan


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
    if dry_run:
        folder = outbox or mailing.config.outbox_dir / mailing.issue.slug
        # The whole list and the check first, as a real send reads them before it writes:
        # a damaged list stops the dry run before the outbox is touched.
        audience = mailing.audience()
        findings = mailing.check()
        report = write_outbox(mailing, folder)
        output.show_outbox(report, audience)
        output.show_findings(findings)
        warn_if_not_synced(mailing.config)
        exit_if_a_send_would_stop(findings)
        return
    if to:
        _send_proofs(mailing, to, as_email)
        return
    from smakom_cli.delivery.send import SendOptions  # not for a dry run: it loads the sender

    options = SendOptions(
        force=force, resend_uncertain=resend_uncertain, again=again, sync=not no_sync
    )
    _send_to_list(mailing, options, yes=yes)


def _refuse_conflicts(**given: bool) -> None:
    """Options that cannot mean anything together are refused, never silently ignored."""
    pairs = [
        ("to", "dry_run", _("--to sends a proof; --dry-run sends nothing. Use one of them.")),
        ("outbox", None, _("--outbox is the folder of a --dry-run; add --dry-run.")),
        ("as_email", "no_to", _("--as personalises a proof: give --to ADDRESS as well.")),
        (
            "again",
            "resend_uncertain",
            _("--again already sends to everyone, the uncertain too."),
        ),
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


def _send_proofs(mailing: Mailing, to: list[str], as_email: str | None) -> None:
    from smakom_cli.delivery.send import send_proof

    with output.unfailing_output():
        proof = send_proof(mailing, signin(mailing.config), to, as_email=as_email)
        if proof.made_key:
            say_key_made(mailing.config)
        output.show_send_report(proof.report, None)
    raise typer.Exit(proof.exit_code)


def _send_to_list(mailing: Mailing, options: SendOptions, *, yes: bool) -> None:
    """One core call; here only what is shown and asked on the way."""
    from smakom_cli.delivery.send import send_issue
    from smakom_cli.delivery.workflow import note_in_report

    def confirm(plan: SendPlan) -> bool:
        _show_plan(plan)
        return yes or output.confirm(plan.question)

    # From the confirmation on, the exit code tells what was sent, even once the terminal or
    # pipe is gone.
    with ExitStack() as unfailing, ExitStack() as progress:
        lost: list[OutputLoss] = []

        def start(starting: Starting) -> Callable[[ProgressEvent], None]:
            lost.append(unfailing.enter_context(output.unfailing_output()))
            if starting.synced is not None:
                output.show_sync(starting.synced)
            if starting.made_key:
                say_key_made(mailing.config)
            return progress.enter_context(output.send_progress(starting.plan.pending))

        outcome = send_issue(
            mailing, signin(mailing.config), options, confirm=confirm, on_start=start
        )
        progress.close()
        if outcome.delivery is not None:
            output.show_delivery(outcome.delivery)
    plan = outcome.plan
    if outcome.delivery is not None:
        if lost and lost[0].problem:
            note = _("the output went away during the send ({problem}).")
            note_in_report(outcome.delivery, note.format(problem=lost[0].problem))
    elif plan.refusal:
        output.show_findings(plan.findings)
        raise SmakomError(plan.refusal)
    elif outcome.declined:
        raise typer.Abort
    else:
        _show_plan(plan)
        output.success(plan.nothing_to_send_reason)
    raise typer.Exit(outcome.exit_code)


def _show_plan(plan: SendPlan) -> None:
    if any(finding.severity == "error" for finding in plan.findings):
        output.show_findings(plan.findings)
    output.show_plan(plan)
