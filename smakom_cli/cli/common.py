"""What several command groups share: the sign-in resolver of the folder, the issue prepared for a
command, the warning that the one-click unsubscribes are old, the end of a look with errors."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from smakom_cli.cli.app import output, state
from smakom_cli.errors import ExitCode
from smakom_cli.i18n import _, ngettext

if TYPE_CHECKING:
    from collections.abc import Iterable

    from smakom_cli.compose.render import ImageMode
    from smakom_cli.config import Config
    from smakom_cli.delivery.check import Finding
    from smakom_cli.delivery.mailing import Mailing
    from smakom_cli.signin.resolver import Resolver


def signin(config: Config) -> Resolver:
    """Every login and secret of this folder, from the settings, this environment and the
    keyring (the one place the command line hands the environment to the core)."""
    from smakom_cli.signin.resolver import Resolver

    return Resolver(config, os.environ)


def prepare(
    ctx: typer.Context,
    issue: Path,
    subscribers: Path | None,
    *,
    sending: bool,
    images: ImageMode = "mail",
) -> Mailing:
    """Load the configuration and render the issue for the list.

    Only looking (`sending` False) signs the links at once: with the real key if there is
    one, else a throwaway one, said in a warning. A send gets its key from the core.
    """
    from smakom_cli.delivery.mailing import prepare

    config = state(ctx).config()
    mailing = prepare(config, issue, subscribers_path=subscribers, secret=None, images=images)
    # A damaged suppression list stops every command here, before an outbox or a journal
    # is touched: read as shorter, it would mail people who asked to leave.
    mailing.suppression.suppressed()
    # So does a journal of this issue that holds fewer than its witness recorded: `check`,
    # the preview and the dry run stop with the very line the send would give.
    from smakom_cli.audience.witness import Witness
    from smakom_cli.delivery.journal import any_journal, issue_header, issue_journals

    issue_journals(config.journal_dir, issue_header(mailing.issue))
    witness = Witness(config.folder)
    if witness.lacks(
        journals=any_journal(config.journal_dir),
        unsubscribed=bool(mailing.suppression.suppressed()),
    ):
        output.warning(
            _(
                "smakom's witness of sent/ and unsubscribed.csv ({path}) is missing or not "
                "complete (a folder from before it existed, or a fresh copy of the folder); "
                "the next send makes it from the files as they are now, so it cannot tell "
                "whether they lost anything before."
            ).format(path=witness.path)
        )
    if sending:
        return mailing
    # The key last, so a mistake in the issue is the first thing said.
    looking = signin(config).looking_key()
    if looking.warning:
        output.warning(looking.warning)
    return replace(mailing, secret=looking.secret)


def warn_if_not_synced(config: Config) -> None:
    """A preview or dry run uses no network: say when the unsubscribes on the web are old."""
    from datetime import UTC, datetime, timedelta

    from smakom_cli.delivery.journal import any_journal
    from smakom_cli.returns.sync import last_sync, service_urls

    if service_urls(config) is None:
        return
    synced = last_sync(config)
    if synced is None and not any_journal(config.journal_dir):
        return  # no issue has gone out, so nobody can have used a link yet
    if synced is None or datetime.now(UTC) - synced > timedelta(days=1):
        when = "never" if synced is None else f"last on {synced:%Y-%m-%d}"
        output.warning(
            _(
                "Who unsubscribed with the one-click link was synced {when}; this uses "
                "unsubscribed.csv as it is (`smakom sync` fetches them; a real send "
                "syncs first)."
            ).format(when=when)
        )


def exit_if_a_send_would_stop(findings: Iterable[Finding]) -> None:
    """A preview or dry run with errors ends as the send would: one red line and exit 1
    (after writing what it writes), so nobody takes its files for a send that would go."""
    errors = sum(finding.severity == "error" for finding in findings)
    if errors:
        output.error(
            ngettext(
                "a real send would stop: {count} error (see above); fix it, or send with --force.",
                "a real send would stop: {count} errors (see above); fix them, or send with "
                "--force.",
                errors,
            ).format(count=errors)
        )
        raise typer.Exit(ExitCode.ERROR)


def say_key_made(config: Config) -> None:
    output.success(
        _(
            "Made the key that signs the unsubscribe links of {list_id} and stored "
            "it in the system keyring; the links in every issue depend on it, so "
            "it is kept from now on."
        ).format(list_id=config.list_id)
    )
