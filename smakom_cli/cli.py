"""The `smakom` command line: parse options, call one core function, print, exit.

Nothing here reads CSV, builds MIME or talks SMTP; that lives in the modules named after
each concept. Heavy imports happen inside the commands so `smakom --help` starts fast.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from smakom_cli import __version__, output
from smakom_cli.errors import SmakomError

if TYPE_CHECKING:
    from collections.abc import Callable

    from smakom_cli.config import Config
    from smakom_cli.mailing import Mailing
    from smakom_cli.render import ImageMode
    from smakom_cli.sender import SendReport
    from smakom_cli.suppression import Change


class _Group(TyperGroup):
    """Turns every user error into one red line and exit code 1, in this one place."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SmakomError as exc:
            if ctx.meta.get("smakom.debug"):
                raise
            output.error(str(exc))
            raise typer.Exit(1) from None
        except OSError as exc:
            if ctx.meta.get("smakom.debug"):
                raise
            output.error(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    help="Write, check, preview and send the SmåKom newsletter.",
)


@dataclass
class _State:
    config_path: Path | None

    def config(self) -> Config:
        from smakom_cli.config import find_config, load_config

        return load_config(self.config_path or find_config(Path.cwd()))


def _state(ctx: typer.Context) -> _State:
    state = ctx.find_root().obj
    assert isinstance(state, _State)
    return state


def _version(value: bool) -> None:
    if value:
        output.info(f"smakom {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The newsletter's smakom.toml (default: found in this folder or a parent).",
            dir_okay=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when something fails.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Write, check, preview and send the SmåKom newsletter."""
    ctx.obj = _State(config_path=config)
    ctx.meta["smakom.debug"] = debug


SubscribersOption = Annotated[
    Path | None,
    typer.Option(
        "--subscribers",
        help="The subscriber list (CSV) to use instead of the one named in smakom.toml.",
        dir_okay=False,
        metavar="PATH",
        show_default=False,
    ),
]
IssueArgument = Annotated[
    Path, typer.Argument(help="The issue file, e.g. issues/2021-01.md.", dir_okay=False)
]


def _unsubscribe_secret(config: Config, *, required: bool) -> bytes | None:
    """The key that signs unsubscribe links, from the keyring; a throwaway one for looking."""
    if not config.unsubscribe.url:
        return None
    from smakom_cli.credentials import unsubscribe_secret

    try:
        return unsubscribe_secret(config.list_id, os.environ)
    except SmakomError as exc:
        if required:
            raise
        output.warning(
            f"{exc} The unsubscribe links in this preview or dry run are signed with a "
            "throwaway key and will not work."
        )
        return secrets.token_bytes(32)


def _prepare(
    ctx: typer.Context,
    issue: Path,
    subscribers: Path | None,
    *,
    sending: bool,
    images: ImageMode = "embed",
) -> Mailing:
    """Load the configuration and render the issue for the list, with the link-signing key."""
    from smakom_cli.mailing import prepare

    config = _state(ctx).config()
    secret = _unsubscribe_secret(config, required=sending)
    return prepare(config, issue, subscribers_path=subscribers, secret=secret, images=images)


@app.command()
def preview(
    ctx: typer.Context,
    issue: IssueArgument,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the personalised HTML to this file.")
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML in the web browser.")
    ] = False,
    as_email: Annotated[
        str | None, typer.Option("--as", help="Preview as this subscriber (an e-mail address).")
    ] = None,
    subscribers: SubscribersOption = None,
) -> None:
    """Show the issue as a subscriber gets it: envelope, text, audience, size, warnings."""
    from smakom_cli.preview import build_preview

    mailing = _prepare(ctx, issue, subscribers, sending=False, images="file")
    config = mailing.config
    result = build_preview(mailing, as_email)
    output.show_preview(result)
    if html or open_browser:
        target = html or config.outbox_dir / f"{mailing.issue.slug}.preview.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result.html, encoding="utf-8")
        output.success(f"HTML written to {target}")
        if open_browser:
            import webbrowser

            webbrowser.open(target.resolve().as_uri())


@app.command()
def check(ctx: typer.Context, issue: IssueArgument, subscribers: SubscribersOption = None) -> None:
    """Check an issue before sending: links, images, size, unsubscribe link, addresses."""
    findings = _prepare(ctx, issue, subscribers, sending=False).check()
    output.show_findings(findings)
    if any(finding.severity == "error" for finding in findings):
        raise typer.Exit(1)
    output.success(f"{issue} is ready to send.")


@app.command()
def send(
    ctx: typer.Context,
    issue: IssueArgument,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Write every message to the outbox folder; send nothing."),
    ] = False,
    outbox: Annotated[
        Path | None,
        typer.Option(
            "--outbox", help="Folder for --dry-run (default: outbox/<issue> in the folder)."
        ),
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="Send a proof to this address only (repeatable)."),
    ] = None,
    as_email: Annotated[
        str | None, typer.Option("--as", help="Personalise a proof as this subscriber.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Send even when `smakom check` finds errors.")
    ] = False,
    resend_uncertain: Annotated[
        bool,
        typer.Option(
            "--resend-uncertain",
            help="Also send to those whose message was in flight when a send was cut off.",
        ),
    ] = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again", help="Send the issue again to everyone, even those who already got it."
        ),
    ] = False,
    subscribers: SubscribersOption = None,
) -> None:
    """Send the issue: a dry run to files, a proof to yourself, or to every subscriber."""
    from smakom_cli.mailing import write_outbox

    mailing = _prepare(ctx, issue, subscribers, sending=not dry_run)
    config = mailing.config
    if dry_run:
        folder = outbox or config.outbox_dir / mailing.issue.slug
        report = write_outbox(mailing, folder)
        output.show_outbox(report, mailing.audience())
        output.show_findings(mailing.check())
        return
    password = _smtp_password(config)
    if to:
        _send_proofs(mailing, to, as_email, password)
        return
    _send_to_list(
        mailing, password, yes=yes, force=force, resend_uncertain=resend_uncertain, again=again
    )


def _smtp_password(config: Config) -> str | None:
    if not config.smtp.username:
        return None
    from smakom_cli.credentials import lookup_password

    password = lookup_password(config.smtp.username, os.environ)
    if password is None:
        raise SmakomError(
            f"no password is stored for {config.smtp.username}. Run `smakom login` first "
            "(or set SMAKOM_SMTP_PASSWORD for unattended runs)."
        )
    return password


def _send_proofs(
    mailing: Mailing, to: list[str], as_email: str | None, password: str | None
) -> None:
    from smakom_cli.sender import send_messages
    from smakom_cli.subscribers import parse_address

    addresses = [parse_address(address).send_to for address in to]
    sample = mailing.sample(as_email)
    report = send_messages(
        mailing.proofs(addresses, sample),
        mailing.config.smtp,
        envelope_from=mailing.config.sender.email,
        password=password,
        journal=None,
        is_suppressed=lambda _key: False,
    )
    output.show_send_report(report, None)
    if not report.complete:
        raise typer.Exit(1)


def _send_to_list(
    mailing: Mailing,
    password: str | None,
    *,
    yes: bool,
    force: bool,
    resend_uncertain: bool,
    again: bool,
) -> None:
    from smakom_cli.journal import Journal
    from smakom_cli.mailing import journal_path, write_send_report
    from smakom_cli.sender import send_messages

    config = mailing.config
    findings = mailing.check()
    if any(finding.severity == "error" for finding in findings):
        output.show_findings(findings)
        if not force:
            raise SmakomError("the check found errors; fix them (or send with --force).")
    path = journal_path(mailing)
    with Journal.open(path, fresh=again) as journal:
        done = journal.done if resend_uncertain else journal.done | journal.uncertain
        if journal.uncertain and not resend_uncertain:
            output.warning(
                f"{len(journal.uncertain)} message(s) were in flight when an earlier send was "
                "cut off and may have arrived; they are not sent again. Use "
                "--resend-uncertain to send them anyway: " + ", ".join(sorted(journal.uncertain))
            )
        pending = sum(1 for s in mailing.recipients() if s.key not in done)
        if pending == 0:
            output.success(
                f"'{mailing.issue.subject}' has already gone to everyone on "
                f"{mailing.subscribers_path.name}; nothing to send."
            )
            return
        if not yes:
            typer.confirm(
                f"Send '{mailing.issue.subject}' to {pending} recipient(s) via {config.smtp.host}?",
                abort=True,
            )
        recipients = (s for s in mailing.recipients() if s.key not in done)
        with output.send_progress(pending) as progress:
            report = _interruptible(
                lambda stop: send_messages(
                    mailing.messages(recipients),
                    config.smtp,
                    envelope_from=config.sender.email,
                    password=password,
                    journal=journal,
                    is_suppressed=mailing.suppression.is_suppressed,
                    on_progress=progress,
                    stop=stop,
                )
            )
        report_file = write_send_report(mailing, report, path)
    output.show_send_report(report, report_file)
    if report.interrupted:
        output.info("Run the same command again to send to those not yet sent.")
    if not report.complete:
        raise typer.Exit(1)


def _interruptible(run: Callable[[threading.Event], SendReport]) -> SendReport:
    """Ctrl-C asks the send to stop after the message in progress, instead of killing it."""
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    try:
        return run(stop)
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="The folder to create or fill.", file_okay=False)],
) -> None:
    """Create a newsletter folder: smakom.toml, subscribers.csv and a first issue."""
    import datetime as dt

    from smakom_cli.scaffold import create_newsletter

    for path in create_newsletter(folder, dt.date.today()):
        output.success(f"created {path}")
    output.info(
        f"Next: edit {folder / 'smakom.toml'}, then `smakom preview` the issue in "
        f"{folder / 'issues'}."
    )


ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why, kept in unsubscribed.csv (e.g. 'asked by phone').")
]


def _subscribers_path(config: Config, option: Path | None) -> Path:
    """The list a command uses: --subscribers when given, else the one in smakom.toml."""
    return option or config.subscribers_path


def _address_from_argument(config: Config, arg: str) -> str:
    """An address as written, or the one a signed unsubscribe link (or its token) names."""
    text = arg.strip()
    if "@" in text and "://" not in text:
        return text
    from smakom_cli.unsubscribe_links import address_from_token

    secret = _unsubscribe_secret(config, required=True)
    if secret is None:
        raise SmakomError(f"'{text}' is not an e-mail address.")
    return address_from_token(secret, text)


def _listed(path: Path, keys: list[str]) -> set[str] | None:
    """Which of these addresses are on the subscriber list; None when it cannot be read."""
    from smakom_cli.subscribers import find_subscribers

    try:
        return set(find_subscribers(path, keys))
    except SmakomError as exc:
        output.warning(f"Could not check which addresses are on the subscriber list: {exc}")
        return None


def _report(
    changes: list[Change], listed: set[str] | None, *, done: str, already: str, unlisted: str
) -> None:
    """One line per address: what happened, and whether it is on the subscriber list."""
    for change in changes:
        note = ""
        if listed is not None:
            note = " (on the subscriber list)" if change.email in listed else f" ({unlisted})"
        if change.already:
            output.info(f"{change.email} {already}{note}.")
        else:
            output.success(f"{change.email} {done}{note}.")


@app.command()
def unsubscribe(
    ctx: typer.Context,
    emails: Annotated[
        list[str] | None,
        typer.Argument(
            help="The addresses to unsubscribe.", metavar="EMAIL...", show_default=False
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="A text file with one address per line (blank lines and # comments skipped).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    reason: ReasonOption = "",
    subscriber_list: SubscribersOption = None,
) -> None:
    """Stop sending the newsletter to these addresses; repeating it is harmless."""
    from smakom_cli.suppression import SuppressionList, read_addresses

    config = _state(ctx).config()
    from_file = read_addresses(file) if file else []
    from_arguments = [_address_from_argument(config, arg) for arg in emails or []]
    if not from_file and not from_arguments:
        raise SmakomError("Give the addresses to unsubscribe, or --file with one address a line.")
    suppression = SuppressionList(config.suppression_path)
    changes = suppression.unsubscribe(from_arguments, source="command", reason=reason)
    changes += suppression.unsubscribe(from_file, source="file", reason=reason)
    _report(
        changes,
        _listed(_subscribers_path(config, subscriber_list), [c.email for c in changes]),
        done="is now unsubscribed",
        already="was already unsubscribed",
        unlisted="not on the subscriber list; kept on record so a later import cannot mail it",
    )


@app.command()
def resubscribe(
    ctx: typer.Context,
    emails: Annotated[
        list[str],
        typer.Argument(
            help="The addresses that asked to get the newsletter again.", metavar="EMAIL..."
        ),
    ],
    reason: ReasonOption = "",
    subscriber_list: SubscribersOption = None,
) -> None:
    """Send the newsletter again to people who unsubscribed and then opted back in."""
    from smakom_cli.suppression import SuppressionList

    config = _state(ctx).config()
    changes = SuppressionList(config.suppression_path).resubscribe(
        emails, source="command", reason=reason
    )
    _report(
        changes,
        _listed(_subscribers_path(config, subscriber_list), [c.email for c in changes]),
        done="is subscribed again",
        already="was not unsubscribed",
        unlisted="not on the subscriber list: add it there to send it the newsletter",
    )


@app.command("subscribers")
def subscribers_command(
    ctx: typer.Context,
    subscriber_list: SubscribersOption = None,
    show_list: Annotated[
        bool, typer.Option("--list", help="Also list everyone who will receive the newsletter.")
    ] = False,
) -> None:
    """Check the subscriber list: who will receive the newsletter and which rows are wrong."""
    from smakom_cli.subscribers import iter_recipients, summarise
    from smakom_cli.suppression import SuppressionList

    config = _state(ctx).config()
    path = _subscribers_path(config, subscriber_list)
    suppressed = SuppressionList(config.suppression_path).is_suppressed
    summary = summarise(path, suppressed)
    counts = [
        ("Rows", summary.rows),
        ("Valid addresses", summary.valid),
        ("Will receive the newsletter", summary.active),
        ("Unsubscribed", summary.unsubscribed),
        ("Duplicates (sent once)", summary.duplicates),
        ("Invalid (left out)", len(summary.invalid)),
    ]
    output.table(("", "Count"), [(label, str(n)) for label, n in counts], title=str(path))
    if summary.invalid:
        output.info(f"These rows are left out of every send; fix them in {path.name}:")
    for row in summary.invalid:
        output.info(f"  line {row.line}: {row.reason}")
    if show_list:
        output.table(
            ("E-mail", "Name", "Organisation"),
            (
                (s.email, s.name, s.fields.get("organisation", ""))
                for s in iter_recipients(path, suppressed)
            ),
            title="Will receive the newsletter",
        )


@app.command()
def archive(
    ctx: typer.Context,
    issues: Annotated[
        list[Path] | None,
        typer.Argument(
            help="The issues to publish (default: every .md in the issues folder); "
            "the index and the feed list exactly these.",
            dir_okay=False,
            metavar="ISSUE",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="The folder to write the site to (default: site/ in the newsletter folder).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the web version: a page per issue, an index and an Atom feed, ready to upload."""
    from smakom_cli.archive import write_archive

    config = _state(ctx).config()
    report = write_archive(config, issues or (), out)
    output.show_archive(report, config.newsletter.web_base_url)


def _smtp_username(config: Config) -> str:
    if not config.smtp.username:
        raise SmakomError(
            f"{config.path}: [smtp] has no username. Add the account name the mail server "
            "expects (often your e-mail address), then run the command again."
        )
    return config.smtp.username


InboxOption = Annotated[
    bool,
    typer.Option("--inbox", help="The password of the mailbox `smakom inbox` reads instead."),
]


def _login_inbox(config: Config, *, check: bool) -> None:
    from smakom_cli.credentials import lookup_imap_password, store_imap_password
    from smakom_cli.inbox import check_login, require_mailbox

    username = require_mailbox(config).username
    where = f"{config.inbox.host}:{config.inbox.server_port}"
    if check:
        password = lookup_imap_password(username, os.environ)
        if password is None:
            raise SmakomError(
                f"no mailbox password is stored for {username}; run `smakom login --inbox`."
            )
        check_login(config.inbox, password)
        output.success(f"Logged in to the mailbox {where} as {username}.")
        return
    password = typer.prompt(f"Mailbox password for {username} at {where}", hide_input=True)
    keyring_name = store_imap_password(username, password)
    output.success(
        f"Stored the mailbox password for {username} in the system keyring ({keyring_name})."
    )
    output.info("Run `smakom login --inbox --check` to test it against the mail server.")


@app.command()
def login(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Connect and log in to the mail server, without sending anything."
        ),
    ] = False,
    inbox: InboxOption = False,
) -> None:
    """Store the SMTP (or, with --inbox, the mailbox) password in the keyring; never shown."""
    from smakom_cli.credentials import lookup_password, store_password

    config = _state(ctx).config()
    if inbox:
        _login_inbox(config, check=check)
        return
    username = _smtp_username(config)
    where = f"{config.smtp.host}:{config.smtp.port}"
    if check:
        from smakom_cli.sender import check_login

        check_login(config.smtp, lookup_password(username, os.environ))
        output.success(f"Logged in to {where} as {username}.")
        return
    password = typer.prompt(f"Password for {username} at {where}", hide_input=True)
    keyring_name = store_password(username, password)
    output.success(f"Stored the password for {username} in the system keyring ({keyring_name}).")
    output.info("Run `smakom login --check` to test it against the mail server.")


@app.command()
def logout(ctx: typer.Context, inbox: InboxOption = False) -> None:
    """Remove the SMTP (or, with --inbox, the mailbox) password from the system keyring."""
    from smakom_cli.credentials import delete_imap_password, delete_password

    config = _state(ctx).config()
    if inbox:
        name = config.inbox.username
        if name and delete_imap_password(name):
            output.success(f"Removed the mailbox password for {name} from the system keyring.")
        else:
            output.info(f"No mailbox password for {name or '[inbox] username'} was stored.")
        return
    username = _smtp_username(config)
    if delete_password(username):
        output.success(f"Removed the password for {username} from the system keyring.")
    else:
        output.info(f"No password for {username} was stored in the system keyring.")


@app.command()
def inbox(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what would be done; change nothing anywhere."),
    ] = False,
) -> None:
    """Sort the mailbox: bounces, unsubscribe replies and auto-replies; never deletes mail."""
    from datetime import datetime

    from smakom_cli.credentials import lookup_imap_password, stored_unsubscribe_secret
    from smakom_cli.inbox import read_inbox, require_mailbox, write_reports

    config = _state(ctx).config()
    username = require_mailbox(config).username
    password = lookup_imap_password(username, os.environ)
    if password is None:
        raise SmakomError(
            f"no mailbox password is stored for {username}. Run `smakom login --inbox` "
            "first (or set SMAKOM_IMAP_PASSWORD for unattended runs)."
        )
    # Only an existing key: without one no link or Message-ID was ever signed to check.
    try:
        secret = stored_unsubscribe_secret(config.list_id, os.environ)
    except SmakomError as exc:
        output.warning(f"{exc} Bounces are matched by address only.")
        secret = None
    report = read_inbox(config, password, secret, dry_run=dry_run)
    files = [] if dry_run else write_reports(config, report, datetime.now())
    output.show_inbox(report, files)
    if report.interrupted:
        raise SmakomError(report.interrupted)


def main() -> None:
    """Entry point of the `smakom` console script."""
    app()
