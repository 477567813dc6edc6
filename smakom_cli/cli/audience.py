"""Commands for the audience: unsubscribe, resubscribe, unsubscribed, subscribers."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smakom_cli.cli.app import SubscribersOption, app, output, state
from smakom_cli.errors import ExitCode, SmakomError
from smakom_cli.i18n import _

if TYPE_CHECKING:
    from smakom_cli.audience.suppression import Change
    from smakom_cli.config import Config


ReasonOption = Annotated[
    str, typer.Option("--reason", help=_("Why, kept in unsubscribed.csv (e.g. 'asked by phone')."))
]


def _subscribers_path(config: Config, option: Path | None) -> Path:
    """The list a command uses: --subscribers when given, else the one in smakom.toml."""
    return option or config.subscribers_path


def _address_from_argument(config: Config, arg: str) -> str:
    """An address as written, or the one a signed unsubscribe link (or its token) names."""
    text = arg.strip()
    if "@" in text and "://" not in text:
        return text
    from smakom_cli.audience.unsubscribe_links import address_from_token
    from smakom_cli.returns.sync import known_addresses
    from smakom_cli.signin.credentials import unsubscribe_secret

    if not config.unsubscribe.url or not _looks_like_a_link(text):
        raise SmakomError(
            _(
                "'{text}' is not an e-mail address (it has no @), nor an unsubscribe link; "
                "give the address as name@example.org."
            ).format(text=text)
        )
    secret = unsubscribe_secret(config.list_id, os.environ)
    if secret is None:
        raise SmakomError(
            _(
                "'{text}' is not an e-mail address, and no unsubscribe link of "
                "{list_id} can be checked on this computer: its key is not in the "
                "keyring (set SMAKOM_UNSUBSCRIBE_SECRET as on the computer that sent "
                "the issue)."
            ).format(text=text, list_id=config.list_id)
        )
    return address_from_token(secret, text, known_addresses(config))


# A whole link, a token (base64url, 34 characters) or an old `<address>.<signature>` token.
_LINK_OR_TOKEN = re.compile(r"\S*://\S+|[A-Za-z0-9_-]{30,}|[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}")


def _looks_like_a_link(text: str) -> bool:
    """Whether `text` could be an unsubscribe link or token at all: only then is the key,
    and so the keyring, needed (a mistyped address gets a word about the address)."""
    return _LINK_OR_TOKEN.fullmatch(text) is not None


def _listed(path: Path, keys: list[str]) -> set[str] | None:
    """Which of these addresses are on the subscriber list; None when it cannot be read."""
    from smakom_cli.audience.subscribers import find_subscribers

    try:
        return set(find_subscribers(path, keys))
    except SmakomError as exc:
        output.warning(
            _("Could not check which addresses are on the subscriber list: {exc}").format(exc=exc)
        )
        return None


def _report(
    changes: list[Change], listed: set[str] | None, *, done: str, already: str, unlisted: str
) -> None:
    """One line per address: what happened, and whether it is on the subscriber list.

    `done` and `already` are sentences with {email} and {note}; `unlisted` is the note for an
    address that is not on the list."""
    for change in changes:
        note = ""
        if listed is not None:
            on_list = change.email in listed
            note = _(" (on the subscriber list)") if on_list else f" ({unlisted})"
        if change.already:
            output.info(already.format(email=change.email, note=note))
        else:
            output.success(done.format(email=change.email, note=note))


@app.command(help=_("Stop sending the newsletter to these addresses; repeating it is harmless."))
def unsubscribe(
    ctx: typer.Context,
    emails: Annotated[
        list[str] | None,
        typer.Argument(
            help=_("The addresses to unsubscribe."), metavar=_("EMAIL..."), show_default=False
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help=_("A text file with one address per line (blank lines and # comments skipped)."),
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    reason: ReasonOption = "",
    subscriber_list: SubscribersOption = None,
) -> None:
    from smakom_cli.audience.suppression import SuppressionList, read_addresses

    config = state(ctx).config()
    from_file = read_addresses(file) if file else []
    from_arguments = [_address_from_argument(config, arg) for arg in emails or []]
    if not from_file and not from_arguments:
        raise SmakomError(
            _("Give the addresses to unsubscribe, or --file with one address a line.")
        )
    suppression = SuppressionList(config.suppression_path)
    changes = suppression.unsubscribe(from_arguments, source="command", reason=reason)
    changes += suppression.unsubscribe(from_file, source="file", reason=reason)
    _report(
        changes,
        _listed(_subscribers_path(config, subscriber_list), [c.email for c in changes]),
        done=_("{email} is now unsubscribed{note}."),
        already=_("{email} was already unsubscribed{note}."),
        unlisted=_("not on the subscriber list; kept on record so a later import cannot mail it"),
    )


@app.command(help=_("Send the newsletter again to people who unsubscribed and then opted back in."))
def resubscribe(
    ctx: typer.Context,
    emails: Annotated[
        list[str],
        typer.Argument(
            help=_("The addresses that asked to get the newsletter again."), metavar=_("EMAIL...")
        ),
    ],
    reason: ReasonOption = "",
    subscriber_list: SubscribersOption = None,
) -> None:
    from smakom_cli.audience.suppression import SuppressionList

    config = state(ctx).config()
    changes = SuppressionList(config.suppression_path).resubscribe(
        emails, source="command", reason=reason
    )
    _report(
        changes,
        _listed(_subscribers_path(config, subscriber_list), [c.email for c in changes]),
        done=_("{email} is subscribed again{note}."),
        already=_("{email} was not unsubscribed{note}."),
        unlisted=_("not on the subscriber list: add it there to send it the newsletter"),
    )


@app.command(help=_("List everyone who unsubscribed: the address, since when, how, and why."))
def unsubscribed(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help=_("Check every line of unsubscribed.csv and say how to repair damage.")
        ),
    ] = False,
) -> None:
    from smakom_cli.audience.suppression import SuppressionList

    suppression = SuppressionList(state(ctx).config().suppression_path)
    if check:
        reading = suppression.read()
        output.show_suppression_check(reading)
        if reading.damage:
            raise typer.Exit(ExitCode.ERROR)
        return
    suppression.suppressed()  # a damaged file is one line naming the damage, not a table
    output.show_unsubscribed(suppression.read())


@app.command(
    "subscribers",
    help=_("Check the subscriber list: who will receive the newsletter and which rows are wrong."),
)
def subscribers_command(
    ctx: typer.Context,
    subscriber_list: SubscribersOption = None,
    show_list: Annotated[
        bool, typer.Option("--list", help=_("Also list everyone who will receive the newsletter."))
    ] = False,
) -> None:
    from smakom_cli.audience.subscribers import iter_recipients, summarise
    from smakom_cli.audience.suppression import SuppressionList

    config = state(ctx).config()
    path = _subscribers_path(config, subscriber_list)
    suppressed = SuppressionList(config.suppression_path).is_suppressed
    summary = summarise(path, suppressed)
    counts = [
        (_("Rows"), summary.rows),
        (_("Valid addresses"), summary.valid),
        (_("Will receive the newsletter"), summary.active),
        (_("Unsubscribed"), summary.unsubscribed),
        (_("Duplicates (sent once)"), summary.duplicates),
        (_("Invalid (left out)"), len(summary.invalid)),
    ]
    output.table(("", _("Count")), [(label, str(n)) for label, n in counts], title=str(path))
    if summary.invalid:
        output.info(
            _("These rows are left out of every send; fix them in {name}:").format(name=path.name)
        )
    for row in summary.invalid:
        output.info(_("  line {line}: {reason}").format(line=row.line, reason=row.reason))
    if summary.duplicate_rows:
        output.info(_("These rows repeat an address; its reader gets one message:"))
    for duplicate in summary.duplicate_rows:
        output.info(
            _("  line {line}: {address} (first on line {first})").format(
                line=duplicate.line, address=duplicate.address, first=duplicate.first_line
            )
        )
    if show_list:
        output.table(
            (_("E-mail"), _("Name"), _("Organisation")),
            (
                (s.email, s.name, s.fields.get("organisation", ""))
                for s in iter_recipients(path, suppressed)
            ),
            title=_("Will receive the newsletter"),
        )
