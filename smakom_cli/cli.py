"""The `smakom` command line: parse options, call one core function, print, exit.

Nothing here reads CSV, builds MIME or talks SMTP; that lives in the modules named after
each concept. Heavy imports happen inside the commands so `smakom --help` starts fast.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from smakom_cli import __version__
from smakom_cli.errors import SmakomError


def _lazy_module(name: str) -> ModuleType:
    """`name`, imported on first use: `smakom --help` never prints through Rich."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from collections.abc import Callable

    from smakom_cli import output
    from smakom_cli.config import Config
    from smakom_cli.delivery import DeliveryReport
    from smakom_cli.mailing import Mailing
    from smakom_cli.render import ImageMode
    from smakom_cli.smtp import Login
    from smakom_cli.suppression import Change
else:
    output = _lazy_module("smakom_cli.output")


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
        import secrets

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


# What `smakom send` exits with, so a cron job can tell the endings apart (README, --help).
EXIT_DONE = 0  # everything done, or nothing left to do
EXIT_ERROR = 1  # an error before anything was sent
EXIT_USAGE = 2  # options that make no sense together
EXIT_FAILED = 3  # sent, but some recipients failed for good or are uncertain (see the report)
EXIT_RESUMABLE = 4  # interrupted or stopped by a fault part-way: run the same command again

_SEND_HELP = """Send the issue: a dry run to files, a proof to yourself, or to every subscriber.

Exit codes: 0 everything done (or nothing left to do); 1 an error before anything was sent;
2 options that do not go together; 3 sent, but some recipients failed for good or are
uncertain (the report names them); 4 interrupted or stopped by a fault part-way: run the
same command again to send the rest.
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
    )
    from smakom_cli.mailing import write_outbox

    mailing = _prepare(ctx, issue, subscribers, sending=not dry_run)
    config = mailing.config
    if dry_run:
        folder = outbox or config.outbox_dir / mailing.issue.slug
        report = write_outbox(mailing, folder)
        output.show_outbox(report, mailing.audience())
        output.show_findings(mailing.check())
        return
    login = _smtp_login(config)
    if to:
        _send_proofs(mailing, to, as_email, login)
        return
    _send_to_list(
        mailing, login, yes=yes, force=force, resend_uncertain=resend_uncertain, again=again
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
    list_only = ("again", "resend_uncertain", "yes")
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
    from smakom_cli.credentials import PASSWORD_VARIABLE, lookup_password
    from smakom_cli.smtp import Login

    password = lookup_password(config.smtp.username, os.environ)
    if password is None:
        raise SmakomError(
            f"no password is stored for {config.smtp.username}. Run `smakom login` first "
            f"(or set {PASSWORD_VARIABLE} for unattended runs)."
        )
    if os.environ.get(PASSWORD_VARIABLE):
        remedy = (
            f"The password came from {PASSWORD_VARIABLE}, which overrides the keyring: set it "
            "to the right password, or unset it to use the one `smakom login` stores."
        )
    else:
        remedy = "Run `smakom login` to store the right password in the system keyring."
    return Login(config.smtp.username, password, remedy=remedy)


def _send_proofs(
    mailing: Mailing, to: list[str], as_email: str | None, login: Login | None
) -> None:
    from smakom_cli.sender import send_messages
    from smakom_cli.subscribers import parse_address

    addresses = [parse_address(address).send_to for address in to]
    sample = mailing.sample(as_email)
    report = send_messages(
        mailing.proofs(addresses, sample),
        mailing.config.smtp,
        envelope_from=mailing.config.sender.email,
        login=lambda: login,
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
    login: Login | None,
    *,
    yes: bool,
    force: bool,
    resend_uncertain: bool,
    again: bool,
) -> None:
    """Plan, show, confirm, run, report: nothing is written before the confirmation."""
    from smakom_cli.delivery import plan_send, run_send

    findings = mailing.check()
    plan = plan_send(
        mailing, findings=findings, force=force, resend_uncertain=resend_uncertain, again=again
    )
    if any(finding.severity == "error" for finding in plan.findings):
        output.show_findings(plan.findings)
    if plan.refusal:
        raise SmakomError(plan.refusal)
    output.show_plan(plan)
    if plan.nothing_to_send:
        output.success(plan.nothing_to_send_reason)
        return
    if not yes:
        typer.confirm(plan.question, abort=True)
    with output.send_progress(plan.pending) as progress:
        delivery = _interruptible(
            lambda stop: run_send(
                plan, mailing, login=lambda: login, on_progress=progress, stop=stop
            )
        )
    output.show_delivery(delivery)
    if delivery.resumable:
        raise typer.Exit(EXIT_RESUMABLE)
    if delivery.send.failed or delivery.uncertain:
        raise typer.Exit(EXIT_FAILED)


# Ctrl-C, `kill` (cron, systemd) and closing the terminal all stop a send the same way.
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _interruptible(run: Callable[[threading.Event], DeliveryReport]) -> DeliveryReport:
    """A stop signal asks the send to stop after the message in progress, instead of killing it."""
    stop = threading.Event()
    previous = {number: signal.getsignal(number) for number in _STOP_SIGNALS}
    for number in _STOP_SIGNALS:
        signal.signal(number, lambda _signum, _frame: stop.set())
    try:
        return run(stop)
    finally:
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


@app.command()
def login(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Connect and log in to the mail server, without sending anything."
        ),
    ] = False,
) -> None:
    """Store the SMTP password in the system keyring (asked for, never shown)."""
    from smakom_cli.credentials import store_password

    config = _state(ctx).config()
    username = _smtp_username(config)
    where = f"{config.smtp.host}:{config.smtp.port}"
    if check:
        from smakom_cli.smtp import check_login

        check_login(config.smtp, _smtp_login(config))
        output.success(f"Logged in to {where} as {username}.")
        return
    password = typer.prompt(f"Password for {username} at {where}", hide_input=True)
    keyring_name = store_password(username, password)
    output.success(f"Stored the password for {username} in the system keyring ({keyring_name}).")
    output.info("Run `smakom login --check` to test it against the mail server.")


@app.command()
def logout(ctx: typer.Context) -> None:
    """Remove the SMTP password from the system keyring."""
    from smakom_cli.credentials import delete_password

    username = _smtp_username(_state(ctx).config())
    if delete_password(username):
        output.success(f"Removed the password for {username} from the system keyring.")
    else:
        output.info(f"No password for {username} was stored in the system keyring.")


def main() -> None:
    """Entry point of the `smakom` console script."""
    app()
