"""The `smakom` command line: parse options, call one core function, print, exit.

Nothing here reads CSV, builds MIME or talks SMTP; that lives in the modules named after
each concept. Heavy imports happen inside the commands so `smakom --help` starts fast.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from smakom_cli import __version__
from smakom_cli.errors import SmakomError
from smakom_cli.lazy import lazy_module

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

    from smakom_cli import output
    from smakom_cli.config import Config
    from smakom_cli.delivery import DeliveryReport
    from smakom_cli.mailing import Mailing
    from smakom_cli.oauth import DeviceCode, SignIn
    from smakom_cli.render import ImageMode
    from smakom_cli.smtp import Login
    from smakom_cli.suppression import Change
    from smakom_cli.sync import SyncBatch
else:
    # `smakom --help` never prints through Rich.
    output = lazy_module("smakom_cli.output")


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

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command with its whole one-line summary (click cuts it at about 45 letters)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=200)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    # Plain help: Typer's Rich help imports Rich's Markdown (markdown-it) and tracebacks on
    # every `--help`, most of its start-up time.
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
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
    """The key that signs unsubscribe links, from the keyring; a throwaway one for looking.

    Nothing here writes to the keyring: a send makes the key only once it is confirmed
    (`_make_unsubscribe_secret`). Until then (`required`), a missing key is silently stood
    in for, since no message is built before it is made.
    """
    if not config.unsubscribe.url:
        return None
    import secrets

    from smakom_cli.credentials import unsubscribe_secret

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
            f"No key to sign the unsubscribe links of {config.list_id} has been made yet "
            f"(`smakom login` makes it). {throwaway}"
        )
        return secrets.token_bytes(32)
    return secret


def _prepare(
    ctx: typer.Context,
    issue: Path,
    subscribers: Path | None,
    *,
    sending: bool,
    images: ImageMode = "mail",
) -> Mailing:
    """Load the configuration and render the issue for the list, with the link-signing key."""
    from smakom_cli.mailing import prepare

    config = _state(ctx).config()
    mailing = prepare(config, issue, subscribers_path=subscribers, secret=None, images=images)
    # A damaged suppression list stops every command here, before an outbox or a journal
    # is touched: read as shorter, it would mail people who asked to leave.
    mailing.suppression.suppressed()
    # The key last, so a mistake in the issue is the first thing said.
    return replace(mailing, secret=_unsubscribe_secret(config, required=sending))


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
    """Show the issue as a subscriber gets it: envelope, text, audience, sizes and every
    finding of `smakom check`."""
    from smakom_cli.preview import browser_html, build_preview

    mailing = _prepare(ctx, issue, subscribers, sending=False)
    config = mailing.config
    result = build_preview(mailing, as_email)
    output.show_preview(result)
    _warn_if_not_synced(config)
    if html or open_browser:
        target = html or config.outbox_dir / f"{mailing.issue.slug}.preview.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(browser_html(mailing.rendered, result.html), encoding="utf-8")
        output.success(f"HTML written to {target}")
        if open_browser:
            import webbrowser

            webbrowser.open(target.resolve().as_uri())


@app.command()
def check(
    ctx: typer.Context,
    issue: IssueArgument,
    subscribers: SubscribersOption = None,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Do not ask the one-click service whether it answers."),
    ] = False,
) -> None:
    """Check an issue before sending: links, images, size, unsubscribe link, addresses."""
    from smakom_cli.check import probe_service

    mailing = _prepare(ctx, issue, subscribers, sending=False)
    findings = mailing.check()
    probed = None if offline else probe_service(mailing.config)
    findings += [probed] if probed else []
    output.show_findings(findings)
    _warn_if_not_synced(mailing.config)
    if any(finding.severity == "error" for finding in findings):
        raise typer.Exit(1)
    output.success(f"{issue} is ready to send.")


# What `smakom send` exits with, so a cron job can tell the endings apart (README, --help).
EXIT_DONE = 0  # everything done, or nothing left to do
EXIT_ERROR = 1  # an error before anything was sent
EXIT_USAGE = 2  # options that make no sense together
EXIT_FAILED = 3  # sent, but some recipients failed for good or are uncertain (see the report)
EXIT_RESUMABLE = 4  # interrupted or stopped by a fault part-way: run the same command again

_SEND_HELP = """Send the issue: a dry run to files, a proof to yourself, or to every subscriber.

Exit codes: 0 everything done (or nothing left to do); 1 an error before anything was sent;
2 options that do not go together; 3 sent, but some recipients failed for good or are
uncertain (the report names them), or only uncertain ones are left; 4 interrupted or stopped
by a fault part-way: run the same command again to send the rest.
"""


@app.command(help=_SEND_HELP)
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
        str | None,
        typer.Option("--as", help="Personalise a proof (--to) as this subscriber."),
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
    no_sync: Annotated[
        bool,
        typer.Option(
            "--no-sync",
            help="Send without first fetching who unsubscribed with the one-click link "
            "(when the service cannot be reached).",
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
    from smakom_cli.mailing import write_outbox

    mailing = _prepare(ctx, issue, subscribers, sending=not dry_run)
    config = mailing.config
    if dry_run:
        folder = outbox or config.outbox_dir / mailing.issue.slug
        report = write_outbox(mailing, folder)
        output.show_outbox(report, mailing.audience())
        output.show_findings(mailing.check())
        _warn_if_not_synced(config)
        return
    login = _login_source(config)
    if to:
        _make_unsubscribe_secret(config)
        _send_proofs(_with_secret(mailing), to, as_email, login)
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
            _usage_error(sentence)
    list_only = ("again", "resend_uncertain", "yes", "no_sync")
    for name in list_only:
        if given[name] and (given["dry_run"] or given["to"]):
            option = "--" + name.replace("_", "-")
            _usage_error(f"{option} is for a send to the list, not a dry run or a proof.")


def _usage_error(sentence: str) -> NoReturn:
    output.error(sentence)
    raise typer.Exit(EXIT_USAGE)


def _smtp_login(config: Config) -> Login | None:
    """The account and password a send logs in with, and what to do if it is refused."""
    if not config.smtp.username:
        return None
    from smakom_cli.credentials import PASSWORD_VARIABLE, find_password
    from smakom_cli.smtp import Login

    username = config.smtp.username
    password = find_password(username, os.environ)
    if password is None:
        raise SmakomError(
            f"no password is stored for {username}. Run `smakom login` first "
            f"(or set {PASSWORD_VARIABLE} for unattended runs)."
        )
    if password.source == "environment":
        remedy = (
            f"The password is the one in {password.where}, which overrides the keyring: "
            "correct that variable, or unset it to use the one `smakom login` stores."
        )
    else:
        remedy = (
            f"The password is the one stored in the system keyring ({password.where}): "
            "run `smakom login` to store the right one."
        )
    return Login(username, password.value, remedy=remedy)


def _login_source(config: Config) -> Callable[[], Login | None]:
    """What a send logs in with at each (re)connect: the password, or a fresh OAuth2 token."""
    if config.smtp.auth != "oauth2":
        login = _smtp_login(config)
        return lambda: login
    sign_in = _oauth_sign_in(config)
    sign_in.access_token()  # not signed in: say so before anything is sent
    return lambda: _xoauth2_login(sign_in)


def _xoauth2_login(sign_in: SignIn) -> Login:
    """An SMTP login with the current access token, renewed by msal when it is running out."""
    from smakom_cli.smtp import Login

    token = sign_in.access_token("smtp")
    remedy = (
        "Run `smakom login` to sign in again; if that does not help, see the README "
        "(Microsoft 365) for the app registration and SMTP AUTH for the mailbox."
    )
    return Login(token.username, token.token, method="xoauth2", remedy=remedy)


def _send_proofs(
    mailing: Mailing, to: list[str], as_email: str | None, login: Callable[[], Login | None]
) -> None:
    from smakom_cli.sender import send_messages
    from smakom_cli.subscribers import parse_address

    addresses = [parse_address(address).send_to for address in to]
    sample = mailing.sample(as_email)
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
        raise typer.Exit(EXIT_RESUMABLE)
    if not report.complete:
        raise typer.Exit(EXIT_FAILED)


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
    from smakom_cli.delivery import plan_send, run_send

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
            raise typer.Exit(EXIT_FAILED)
        return
    if not yes:
        typer.confirm(plan.question, abort=True)
    if batch is not None:
        from smakom_cli.sync import apply_events, service_urls

        urls = service_urls(mailing.config)
        output.show_sync(apply_events(mailing.config, batch), urls.events if urls else "")
    _make_unsubscribe_secret(mailing.config)
    mailing = _with_secret(mailing)
    with output.send_progress(plan.pending) as progress:
        delivery = _interruptible(
            lambda stop: run_send(plan, mailing, login=login, on_progress=progress, stop=stop)
        )
    output.show_delivery(delivery)
    if delivery.resumable:
        raise typer.Exit(EXIT_RESUMABLE)
    if delivery.send.failed or delivery.uncertain:
        raise typer.Exit(EXIT_FAILED)


def _fetch_unsubscribes(mailing: Mailing) -> SyncBatch | None:
    """The one-click service's new events, fetched (not yet written) before a send plans.

    Nobody is mailed on stale data: a service that cannot be reached stops the send, unless
    --no-sync says to go on without it.
    """
    from smakom_cli.credentials import SERVICE_KEY_VARIABLE, service_key
    from smakom_cli.sync import fetch_events, service_urls

    config = mailing.config
    if service_urls(config) is None or mailing.secret is None:
        return None
    try:
        key = service_key(config.list_id, os.environ)
    except SmakomError as exc:  # no keyring on this machine
        raise SmakomError(
            f"{exc} The one-click service's sync key can come from {SERVICE_KEY_VARIABLE}; "
            "or send with --no-sync."
        ) from None
    if key is None:
        raise SmakomError(
            "no sync key for the one-click unsubscribe service: run `smakom login "
            f"--service-key` (or set {SERVICE_KEY_VARIABLE}), or send with --no-sync."
        )
    try:
        return fetch_events(config, key, mailing.secret, lists=[mailing.subscribers_path])
    except SmakomError as exc:
        raise SmakomError(
            f"{exc} Nobody was mailed; send with --no-sync to send without it."
        ) from None


def _pending_unsubscribes(batch: SyncBatch | None) -> frozenset[str]:
    from smakom_cli.sync import pending_unsubscribes

    return pending_unsubscribes(batch) if batch is not None else frozenset()


def _warn_if_not_synced(config: Config) -> None:
    """A preview or dry run uses no network: say when the unsubscribes on the web are old."""
    from datetime import UTC, datetime, timedelta

    from smakom_cli.sync import last_sync, service_urls

    if service_urls(config) is None:
        return
    synced = last_sync(config)
    if synced is None or datetime.now(UTC) - synced > timedelta(days=1):
        when = "never" if synced is None else f"last on {synced:%Y-%m-%d}"
        output.warning(
            f"Who unsubscribed with the one-click link was synced {when}; this uses "
            "unsubscribed.csv as it is (`smakom sync` fetches them; a real send syncs first)."
        )


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
    from smakom_cli.credentials import unsubscribe_secret
    from smakom_cli.sync import known_addresses
    from smakom_cli.unsubscribe_links import address_from_token

    if not config.unsubscribe.url:
        raise SmakomError(f"'{text}' is not an e-mail address.")
    secret = unsubscribe_secret(config.list_id, os.environ)
    if secret is None:
        raise SmakomError(
            f"'{text}' is not an e-mail address, and no unsubscribe link of "
            f"{config.list_id} can be checked on this computer: its key is not in the keyring "
            "(set SMAKOM_UNSUBSCRIBE_SECRET as on the computer that sent the issue)."
        )
    return address_from_token(secret, text, known_addresses(config))


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


@app.command()
def unsubscribed(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Check every line of unsubscribed.csv and say how to repair damage."
        ),
    ] = False,
) -> None:
    """List everyone who unsubscribed: the address, since when, how, and why."""
    from smakom_cli.suppression import SuppressionList

    suppression = SuppressionList(_state(ctx).config().suppression_path)
    if check:
        reading = suppression.read()
        output.show_suppression_check(reading)
        if reading.damage:
            raise typer.Exit(1)
        return
    suppression.suppressed()  # a damaged file is one line naming the damage, not a table
    output.show_unsubscribed(suppression.read())


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
    from smakom_cli.credentials import store_imap_password
    from smakom_cli.inbox import check_login, require_mailbox

    username = require_mailbox(config).username
    where = f"{config.inbox.host}:{config.inbox.server_port}"
    if check:
        login = _inbox_login(config)
        check_login(config.inbox, login)
        how = "OAuth2" if login.method == "xoauth2" else "a password"
        output.success(f"Logged in to the mailbox {where} as {username} with {how}.")
        return
    if _inbox_signs_in_with_oauth(config):
        raise SmakomError(
            f"the mailbox {username} signs in with OAuth2 like the sending: run `smakom login` "
            "(no mailbox password is needed)."
        )
    password = typer.prompt(f"Mailbox password for {username} at {where}", hide_input=True)
    keyring_name = store_imap_password(username, password)
    output.success(
        f"Stored the mailbox password for {username} in the system keyring ({keyring_name})."
    )
    output.info("Run `smakom login --inbox --check` to test it against the mail server.")


def _inbox_signs_in_with_oauth(config: Config) -> bool:
    """The mailbox is the sending one, and that signs in with OAuth2: the same sign-in."""
    return config.smtp.auth == "oauth2" and (
        config.inbox.username.lower() == config.smtp.username.lower()
    )


def _inbox_login(config: Config) -> Login:
    """How `smakom inbox` signs in: the sending mailbox's OAuth2 token, or a password."""
    from smakom_cli.credentials import IMAP_PASSWORD_VARIABLE, lookup_imap_password
    from smakom_cli.smtp import Login

    username = config.inbox.username
    if _inbox_signs_in_with_oauth(config):
        from smakom_cli.oauth import access_token

        token = access_token(config, "imap")
        remedy = "run `smakom login` to sign in again (IMAP.AccessAsUser.All, see the README)."
        return Login(token.username, token.token, method="xoauth2", remedy=remedy)
    password = lookup_imap_password(username, os.environ)
    if password is None:
        raise SmakomError(
            f"no mailbox password is stored for {username}. Run `smakom login --inbox` "
            f"first (or set {IMAP_PASSWORD_VARIABLE} for unattended runs)."
        )
    remedy = (
        f"run `smakom login --inbox` to store the right password (or set {IMAP_PASSWORD_VARIABLE})."
    )
    return Login(username, password, remedy=remedy)


@app.command()
def login(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Connect and log in to the mail server, without sending anything; with "
            "OAuth2 also say until when the token is valid.",
        ),
    ] = False,
    service_key: Annotated[
        bool,
        typer.Option(
            "--service-key",
            help="Store the one-click service's sync key instead (SMAKOM_SERVICE_KEY there).",
        ),
    ] = False,
    inbox: InboxOption = False,
) -> None:
    """Sign in to the mail server: a password into the keyring, or OAuth2 with a code.

    With --inbox the same for the mailbox `smakom inbox` reads; with --service-key, store
    the one-click service's sync key."""
    from smakom_cli.credentials import store_password

    config = _state(ctx).config()
    if service_key:
        _store_service_key(config)
        return
    if inbox:
        _login_inbox(config, check=check)
        return
    username = _smtp_username(config)
    if config.smtp.auth == "oauth2":
        _oauth_login(config, check=check)
        if not check:
            _make_unsubscribe_secret(config)
        return
    where = f"{config.smtp.host}:{config.smtp.port}"
    _warn_if_unencrypted_keyring()
    if check:
        from smakom_cli.smtp import check_login

        check_login(config.smtp, _smtp_login(config))
        output.success(f"Logged in to {where} as {username} with a password.")
        return
    password = typer.prompt(f"Password for {username} at {where}", hide_input=True)
    keyring_name = store_password(username, password)
    output.success(f"Stored the password for {username} in the system keyring ({keyring_name}).")
    _make_unsubscribe_secret(config)
    output.info("Run `smakom login --check` to test it against the mail server.")


def _oauth_sign_in(config: Config) -> SignIn:
    """The configured mailbox's OAuth2 sign-in, its tokens in the system keyring."""
    from smakom_cli.oauth import sign_in_for

    return sign_in_for(config)


def _local_time(moment: dt.datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _oauth_login(config: Config, *, check: bool) -> None:
    """`smakom login` for [smtp] auth = "oauth2": the device code, or --check the sign-in."""
    from smakom_cli.credentials import keyring_name

    sign_in = _oauth_sign_in(config)
    username = sign_in.settings.username
    if check:
        from smakom_cli.smtp import check_login, where

        token = sign_in.access_token()
        check_login(config.smtp, _xoauth2_login(sign_in))
        output.success(
            f"Logged in to {where(config.smtp)} as {username} with OAuth2 ([smtp] auth = "
            f'"oauth2"); the access token is valid until {_local_time(token.expires_at)} '
            "and renews itself."
        )
        return

    def show(code: DeviceCode) -> None:
        output.info(
            f"To sign in as {username}, open {code.verification_uri} in a web browser on any "
            f"computer or phone and enter the code {code.user_code} "
            f"(before {_local_time(code.expires_at)})."
        )
        output.info("Waiting for the sign-in to finish… (Ctrl-C to give up)")

    sign_in.device_code_sign_in(show)
    output.success(
        f"Signed in as {username} with OAuth2; the sign-in is kept in the system keyring "
        f"({keyring_name()}) and renews itself."
    )
    output.info("Run `smakom login --check` to see it is valid.")


def _warn_if_unencrypted_keyring() -> None:
    """Say so when the keyring is a plain file: the password would be readable in it."""
    from smakom_cli.credentials import PASSWORD_VARIABLE, unencrypted_keyring

    found = unencrypted_keyring()
    if found is None:
        return
    where = f"in {found.file}" if found.file else "in a file"
    output.warning(
        f"the keyring backend ({found.backend}) keeps passwords unencrypted {where}: anyone "
        "who can read that file can read the password. Use a secure backend (Windows "
        "Credential Locker, macOS Keychain, or Secret Service on Linux; `keyring "
        "--list-backends` shows them, PYTHON_KEYRING_BACKEND chooses one), or on a server set "
        f"{PASSWORD_VARIABLE} in the environment instead of `smakom login`."
    )


def _with_secret(mailing: Mailing) -> Mailing:
    """The mailing with the list's real link-signing key, once it has been made."""
    return replace(mailing, secret=_unsubscribe_secret(mailing.config, required=True))


def _make_unsubscribe_secret(config: Config) -> None:
    """Make the key that signs the unsubscribe links, once per list, and say so."""
    from smakom_cli.credentials import create_unsubscribe_secret, unsubscribe_secret

    if not config.unsubscribe.url or unsubscribe_secret(config.list_id, os.environ):
        return
    create_unsubscribe_secret(config.list_id)
    output.success(
        f"Made the key that signs the unsubscribe links of {config.list_id} and stored it in "
        "the system keyring; the links in every issue depend on it, so it is kept from now on."
    )


def _store_service_key(config: Config) -> None:
    from smakom_cli.credentials import store_service_key

    key = typer.prompt(
        "Sync key of the one-click service (SMAKOM_SERVICE_KEY on the server)", hide_input=True
    )
    keyring_name = store_service_key(config.list_id, key.strip())
    output.success(
        f"Stored the sync key for {config.list_id} in the system keyring ({keyring_name})."
    )
    output.info("Run `smakom sync` to fetch who unsubscribed on the web.")


@app.command()
def logout(ctx: typer.Context, inbox: InboxOption = False) -> None:
    """Remove the SMTP password and the OAuth2 sign-in (with --inbox, the mailbox password)."""
    from smakom_cli.credentials import delete_imap_password, delete_password, delete_token_cache

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
    if delete_token_cache(username):
        output.success(f"Removed the OAuth2 sign-in of {username} from the system keyring.")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="The address to listen on (behind a proxy: 127.0.0.1).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The port to listen on.", min=1)] = 8080,
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="The service's SQLite database (made when missing).", metavar="PATH"
        ),
    ] = Path("smakom-service.sqlite3"),
    config_path: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A smakom.toml for the pages' name and colours (default: none needed).",
            dir_okay=False,
        ),
    ] = None,
    threads: Annotated[
        int, typer.Option("--threads", help="Requests answered at once.", min=1)
    ] = 8,
) -> None:
    """Run the one-click unsubscribe service that answers the mails' unsubscribe links."""
    import waitress

    from smakom_cli.service import MAX_BODY_BYTES, make_app, settings_for

    config = _serve_config(ctx, config_path)
    secret, key = _service_secrets(config)
    app_ = make_app(settings_for(data, secret, key, config))
    output.info(
        f"One-click unsubscribe service on http://{host}:{port}/ (database {data}); "
        "Ctrl-C stops it."
    )
    try:
        waitress.serve(
            app_,
            host=host,
            port=port,
            threads=threads,
            ident="smakom",
            max_request_body_size=MAX_BODY_BYTES * 16,
            _quiet=True,
        )
    except KeyboardInterrupt:
        output.info("Stopped.")


def _serve_config(ctx: typer.Context, option: Path | None) -> Config | None:
    """smakom.toml for the service's look: --config, else one found here, else none."""
    from smakom_cli.config import find_config, load_config

    path = option or _state(ctx).config_path
    if path is not None:
        return load_config(path)
    try:
        return load_config(find_config(Path.cwd()))
    except SmakomError:
        return None


def _service_secrets(config: Config | None) -> tuple[bytes, str]:
    """The link-signing key and the sync key: the environment, or this machine's keyring."""
    from smakom_cli.credentials import (
        SECRET_VARIABLE,
        SERVICE_KEY_VARIABLE,
        service_key,
        unsubscribe_secret,
    )

    list_id = config.list_id if config else ""
    # Without a newsletter folder there is no list to look up in the keyring.
    has_secret = list_id or os.environ.get(SECRET_VARIABLE)
    secret = unsubscribe_secret(list_id, os.environ) if has_secret else None
    if secret is None:
        raise SmakomError(
            f"the service needs the key the unsubscribe links are signed with: set "
            f"{SECRET_VARIABLE} to the one in the office's keyring (see the README)."
        )
    key = service_key(list_id, os.environ)
    if key is None:
        raise SmakomError(
            f"the service needs a sync key for `smakom sync`: set {SERVICE_KEY_VARIABLE} "
            "(at least 32 random characters), and store the same with `smakom login --service-key`."
        )
    return secret, key


@app.command()
def sync(
    ctx: typer.Context,
    subscriber_list: Annotated[
        Path | None,
        typer.Option(
            "--subscribers",
            help="Another subscriber list, besides the one in smakom.toml, that was sent to.",
            dir_okay=False,
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fetch who unsubscribed (or undid it) on the one-click service into unsubscribed.csv."""
    from smakom_cli.sync import apply_events, fetch_events, service_urls

    config = _state(ctx).config()
    urls = service_urls(config)
    if urls is None:
        raise SmakomError(
            f"{config.path.name}: [unsubscribe] has no url, so there is no one-click service "
            "to sync with."
        )
    key = _sync_key(config)
    secret = _unsubscribe_secret(config, required=True)
    assert secret is not None
    lists = [subscriber_list] if subscriber_list else []
    result = apply_events(config, fetch_events(config, key, secret, lists=lists))
    output.show_sync(result, urls.events)


def _sync_key(config: Config) -> str:
    from smakom_cli.credentials import SERVICE_KEY_VARIABLE, service_key

    key = service_key(config.list_id, os.environ)
    if key is None:
        raise SmakomError(
            "no sync key for the one-click service is stored: run `smakom login --service-key` "
            f"(or set {SERVICE_KEY_VARIABLE})."
        )
    return key


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

    from smakom_cli.credentials import unsubscribe_secret
    from smakom_cli.inbox import read_inbox, require_mailbox, write_reports

    config = _state(ctx).config()
    require_mailbox(config)
    login = _inbox_login(config)
    # Only an existing key: without one no link or Message-ID was ever signed to check.
    try:
        secret = unsubscribe_secret(config.list_id, os.environ)
    except SmakomError as exc:
        output.warning(f"{exc} Bounces are matched by address only.")
        secret = None
    report = read_inbox(config, login, secret, dry_run=dry_run)
    files = [] if dry_run else write_reports(config, report, datetime.now())
    output.show_inbox(report, files)
    if report.interrupted:
        raise SmakomError(report.interrupted)


def main() -> None:
    """Entry point of the `smakom` console script."""
    app()
