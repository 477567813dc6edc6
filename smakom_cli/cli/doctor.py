"""`smakom doctor`: the whole setup checked before the first send."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from smakom_cli.cli.app import app, output, state
from smakom_cli.i18n import _


@app.command(
    help=_(
        "Check everything a send, a sync and an inbox run need, without "
        "sending: settings, keyring, sign-in, the sender domain's SPF, DKIM, "
        "DMARC and MX, the one-click service and the inbox. One line per "
        "check; exits 1 when any is a problem."
    )
)
def doctor(
    ctx: typer.Context,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help=_("Only the checks that need no network: settings, issues and the keyring."),
        ),
    ] = False,
    dns: Annotated[
        str | None,
        typer.Option(
            "--dns",
            help=_("Ask this DNS server (HOST[:PORT], an IP address) instead of the system's."),
            metavar=_("HOST[:PORT]"),
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", help=_("Seconds to wait for each server that is asked."), min=0.1, max=120
        ),
    ] = 10.0,
) -> None:
    from smakom_cli.config import find_config
    from smakom_cli.doctor import Options, check_setup
    from smakom_cli.doctor.dns import parse_server

    server = parse_server(dns) if dns else None
    path = state(ctx).config_path or find_config(Path.cwd())
    report = check_setup(path, os.environ, Options(offline=offline, dns=server, timeout=timeout))
    output.show_doctor(report)
    raise typer.Exit(report.exit_code)
