"""What several command groups share: the issue prepared for a command, the link-signing key, the
warning that the one-click unsubscribes are old."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from smakom_cli.cli.app import output, state
from smakom_cli.errors import ExitCode, SmakomError
from smakom_cli.i18n import _, ngettext

if TYPE_CHECKING:
    from collections.abc import Iterable

    from smakom_cli.compose.render import ImageMode
    from smakom_cli.config import Config
    from smakom_cli.delivery.check import Finding
    from smakom_cli.delivery.mailing import Mailing


def link_secret(config: Config, *, required: bool) -> bytes | None:
    """The key that signs unsubscribe links, from the keyring; a throwaway one for looking.

    Nothing here writes to the keyring: a send makes the key only once it is confirmed
    (`make_unsubscribe_secret`). Until then (`required`), a missing key is silently stood
    in for, since no message is built before it is made.
    """
    if not config.unsubscribe.url:
        return None
    import secrets

    from smakom_cli.signin.credentials import unsubscribe_secret

    if required:
        return unsubscribe_secret(config.list_id, os.environ) or secrets.token_bytes(32)
    throwaway = (
        "The unsubscribe links in this preview or dry run are signed with a throwaway key "
        "and will not work."
    )
    try:
        secret = unsubscribe_secret(config.list_id, os.environ)
    except SmakomError as exc:
        output.warning(f"{exc} {throwaway}")
        return secrets.token_bytes(32)
    if secret is None:
        output.warning(
            _(
                "No key to sign the unsubscribe links of {list_id} has been made yet "
                "(`smakom login` makes it). {throwaway}"
            ).format(list_id=config.list_id, throwaway=throwaway)
        )
        return secrets.token_bytes(32)
    return secret


def prepare(
    ctx: typer.Context,
    issue: Path,
    subscribers: Path | None,
    *,
    sending: bool,
    images: ImageMode = "mail",
) -> Mailing:
    """Load the configuration and render the issue for the list, with the link-signing key."""
    from smakom_cli.delivery.mailing import prepare

    config = state(ctx).config()
    mailing = prepare(config, issue, subscribers_path=subscribers, secret=None, images=images)
    # A damaged suppression list stops every command here, before an outbox or a journal
    # is touched: read as shorter, it would mail people who asked to leave.
    mailing.suppression.suppressed()
    # The key last, so a mistake in the issue is the first thing said.
    return replace(mailing, secret=link_secret(config, required=sending))


def warn_if_not_synced(config: Config) -> None:
    """A preview or dry run uses no network: say when the unsubscribes on the web are old."""
    from datetime import UTC, datetime, timedelta

    from smakom_cli.returns.sync import last_sync, service_urls

    if service_urls(config) is None:
        return
    synced = last_sync(config)
    if synced is None and not any(config.journal_dir.glob("*.jsonl")):
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


def with_secret(mailing: Mailing) -> Mailing:
    """The mailing with the list's real link-signing key, once it has been made."""
    return replace(mailing, secret=link_secret(mailing.config, required=True))


def make_unsubscribe_secret(config: Config) -> None:
    """Make the key that signs the unsubscribe links, once per list, and say so."""
    from smakom_cli.signin.credentials import create_unsubscribe_secret, unsubscribe_secret

    if not config.unsubscribe.url or unsubscribe_secret(config.list_id, os.environ):
        return
    create_unsubscribe_secret(config.list_id)
    output.success(
        _(
            "Made the key that signs the unsubscribe links of {list_id} and stored "
            "it in the system keyring; the links in every issue depend on it, so "
            "it is kept from now on."
        ).format(list_id=config.list_id)
    )
