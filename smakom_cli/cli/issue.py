"""Commands for the issue itself: preview, check, init, archive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smakom_cli.cli.app import IssueArgument, SubscribersOption, app, output, state
from smakom_cli.cli.common import prepare, warn_if_not_synced
from smakom_cli.errors import ExitCode


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
    from smakom_cli.delivery.preview import browser_html, build_preview

    mailing = prepare(ctx, issue, subscribers, sending=False)
    config = mailing.config
    result = build_preview(mailing, as_email)
    output.show_preview(result)
    warn_if_not_synced(config)
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
    from smakom_cli.delivery.check import probe_service
    from smakom_cli.doctor import doctor_ran

    mailing = prepare(ctx, issue, subscribers, sending=False)
    findings = mailing.check()
    probed = None if offline else probe_service(mailing.config)
    findings += [probed] if probed else []
    output.show_findings(findings)
    warn_if_not_synced(mailing.config)
    if not doctor_ran(mailing.config):
        output.info(
            _(
                "`smakom doctor` has not checked this folder yet: run it once before the first "
                "send (the sign-in, the keyring, the service, the inbox and the sender domain's "
                "SPF, DKIM and DMARC)."
            )
        )
    if any(finding.severity == "error" for finding in findings):
        raise typer.Exit(ExitCode.ERROR)
    output.success(f"{issue} is ready to send.")


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="The folder to create or fill.", file_okay=False)],
) -> None:
    """Create a newsletter folder: smakom.toml, subscribers.csv and a first issue."""
    import datetime as dt

    from smakom_cli.compose.scaffold import create_newsletter

    for path in create_newsletter(folder, dt.date.today()):
        output.success(f"created {path}")
    output.info(
        f"Next: edit {folder / 'smakom.toml'}, then `smakom preview` the issue in "
        f"{folder / 'issues'}."
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
    from smakom_cli.compose.archive import write_archive

    config = state(ctx).config()
    report = write_archive(config, issues or (), out)
    output.show_archive(report, config.newsletter.web_base_url)
