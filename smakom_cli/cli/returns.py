"""The way back: `smakom serve`, `smakom sync` and `smakom inbox`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smakom_cli.cli.app import app, output, state
from smakom_cli.cli.common import signin
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

if TYPE_CHECKING:
    from smakom_cli.config import Config


@app.command(
    help=_("Run the one-click unsubscribe service that answers the mails' unsubscribe links.")
)
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help=_("The address to listen on (behind a proxy: 127.0.0.1)."))
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help=_("The port to listen on."), min=1)] = 8080,
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help=_("The service's SQLite database (made when missing)."),
            metavar=_("PATH"),
        ),
    ] = Path("smakom-service.sqlite3"),
    config_path: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help=_(
                "A smakom.toml for the pages' name, colours and contact (default: none needed)."
            ),
            dir_okay=False,
        ),
    ] = None,
    threads: Annotated[
        int, typer.Option("--threads", help=_("Requests answered at once."), min=1, max=64)
    ] = 8,
    connections: Annotated[
        int,
        typer.Option(
            "--connections",
            help=_(
                "Connections held open at once (idle or still sending), at most what "
                "the open-file limit allows."
            ),
            min=10,
            max=100_000,
        ),
    ] = 1000,
    idle_timeout: Annotated[
        int,
        typer.Option(
            "--idle-timeout",
            help=_("Seconds a connection may send nothing before it is closed."),
            min=1,
            max=3600,
        ),
    ] = 15,
    log: Annotated[
        Path | None,
        typer.Option(
            "--log",
            help=_(
                "Write the log (a line per request and per error) to this file instead "
                "of standard error."
            ),
            dir_okay=False,
            metavar=_("PATH"),
        ),
    ] = None,
) -> None:
    from smakom_cli.returns.server import bind, service_log
    from smakom_cli.returns.service import make_app, settings_for
    from smakom_cli.signin.resolver import service_secrets

    config = _serve_config(ctx, config_path)
    secret, key = service_secrets(config, os.environ)
    logger = service_log(log)
    app_ = make_app(settings_for(data, secret, key, config), logger)
    server, limits = bind(
        app_, host, port, connections=connections, idle_timeout=idle_timeout, threads=threads
    )
    if limits.limited_by:
        output.warning(
            _(
                "only {count} connections at once, because of {limit}; raise it (`ulimit -n`, "
                "or LimitNOFILE= in the systemd unit) for more."
            ).format(count=limits.connections, limit=limits.limited_by)
        )
    output.info(
        _(
            "One-click unsubscribe service on http://{host}:{port}/ (database {data}; up to "
            "{count} connections, silent ones closed after {seconds} s; log to {log}); Ctrl-C "
            "stops it."
        ).format(
            host=host,
            port=port,
            data=data,
            count=limits.connections,
            seconds=limits.idle_timeout,
            log=log or _("standard error"),
        )
    )
    try:
        server.run()
    except KeyboardInterrupt:
        output.info(_("Stopped."))
    finally:
        server.close()


def _serve_config(ctx: typer.Context, option: Path | None) -> Config | None:
    """smakom.toml for the service's look: --config, else one found here, else none."""
    from smakom_cli.config import find_config, load_config

    path = option or state(ctx).config_path
    if path is not None:
        return load_config(path)
    try:
        return load_config(find_config(Path.cwd()))
    except SmakomError:
        return None


@app.command(
    help=_("Fetch who unsubscribed (or undid it) on the one-click service into unsubscribed.csv.")
)
def sync(
    ctx: typer.Context,
    subscriber_list: Annotated[
        Path | None,
        typer.Option(
            "--subscribers",
            help=_("Another subscriber list, besides the one in smakom.toml, that was sent to."),
            dir_okay=False,
            metavar=_("PATH"),
            show_default=False,
        ),
    ] = None,
) -> None:
    from smakom_cli.returns.sync import sync as sync_events

    lists = [subscriber_list] if subscriber_list else []
    output.show_sync(sync_events(signin(state(ctx).config()), lists=lists))


@app.command(
    help=_("Sort the mailbox: bounces, unsubscribe replies and auto-replies; never deletes mail.")
)
def inbox(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help=_("Show what would be done; change nothing anywhere.")),
    ] = False,
) -> None:
    from smakom_cli.returns.inbox import require_mailbox, sort_inbox

    config = state(ctx).config()
    require_mailbox(config)
    resolver = signin(config)
    login = resolver.inbox_login()
    # Only an existing key: without one no link or Message-ID was ever signed to check.
    try:
        secret = resolver.link_key()
    except SmakomError as exc:
        output.warning(_("{exc} Bounces are matched by address only.").format(exc=exc))
        secret = None
    report = sort_inbox(config, login, secret, dry_run=dry_run)
    output.show_inbox(report)
    if report.interrupted:
        raise SmakomError(report.interrupted)
