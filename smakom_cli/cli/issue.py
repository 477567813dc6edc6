"""Commands for the issue itself: preview, check, init, archive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smakom_cli.atomic import writing
from smakom_cli.cli.app import IssueArgument, SubscribersOption, app, output, state, usage_error
from smakom_cli.cli.common import exit_if_a_send_would_stop, prepare, warn_if_not_synced
from smakom_cli.errors import ExitCode
from smakom_cli.i18n import LANGUAGE, _


@app.command(
    help=_(
        "Show the issue as a subscriber gets it: envelope, text, audience, "
        "sizes and every finding of `smakom check`."
    )
)
def preview(
    ctx: typer.Context,
    issue: IssueArgument,
    html: Annotated[
        Path | None, typer.Option("--html", help=_("Write the personalised HTML to this file."))
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help=_("Open the HTML in the web browser."))
    ] = False,
    as_email: Annotated[
        str | None, typer.Option("--as", help=_("Preview as this subscriber (an e-mail address)."))
    ] = None,
    subscribers: SubscribersOption = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help=_(
                "Show the issue in the web browser while you write it: served on this "
                "computer and shown again at every save of the issue, an image or "
                "smakom.toml (Ctrl-C stops)."
            ),
        ),
    ] = False,
) -> None:
    from smakom_cli.delivery.preview import browser_html, build_preview

    if watch:
        if html:
            usage_error(_("--html writes the preview once; --watch serves it: give one of them."))
        _watch(ctx, issue, subscribers, as_email, open_browser=open_browser)
        return
    mailing = prepare(ctx, issue, subscribers, sending=False)
    config = mailing.config
    result = build_preview(mailing, as_email)
    output.show_preview(result)
    warn_if_not_synced(config)
    if html or open_browser:
        target = html or config.outbox_dir / f"{mailing.issue.slug}.preview.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        with writing(target):
            target.write_text(browser_html(mailing.rendered, result.html), encoding="utf-8")
        output.success(_("HTML written to {target}").format(target=target))
        if open_browser:
            import webbrowser

            if not webbrowser.open(target.resolve().as_uri()):
                output.error(
                    _(
                        "no web browser could be opened on this computer; open {file} in one."
                    ).format(file=target)
                )
                raise typer.Exit(ExitCode.ERROR)
    exit_if_a_send_would_stop(result.findings)


def _watch(
    ctx: typer.Context,
    issue: Path,
    subscribers: Path | None,
    as_email: str | None,
    *,
    open_browser: bool,
) -> None:
    """Serve the preview on 127.0.0.1 and render it again at every save, until Ctrl-C."""
    import secrets
    import threading

    from smakom_cli.config import find_config
    from smakom_cli.delivery.watch import IssueWatcher, PreviewServer, watch

    config_path = state(ctx).config_path or find_config(Path.cwd())
    # A throwaway key: the preview is clicked about in, and its unsubscribe link must not
    # unsubscribe the subscriber it is personalised as.
    watcher = IssueWatcher(config_path, issue, subscribers, as_email, secrets.token_bytes(32))
    output.show_rendering(watcher.render())
    server = PreviewServer(watcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    output.success(
        _("The preview is at {url} and follows every save (Ctrl-C stops).").format(url=server.url)
    )
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        watch(watcher, output.show_rendering, threading.Event())
    except KeyboardInterrupt:
        output.info(_("Stopped."))
    finally:
        server.shutdown()
        server.server_close()


@app.command(
    help=_("Check an issue before sending: links, images, size, unsubscribe link, addresses.")
)
def check(
    ctx: typer.Context,
    issue: IssueArgument,
    subscribers: SubscribersOption = None,
    offline: Annotated[
        bool,
        typer.Option("--offline", help=_("Do not ask the one-click service whether it answers.")),
    ] = False,
) -> None:
    from smakom_cli.delivery.check import probe_service
    from smakom_cli.doctor import doctor_ran

    mailing = prepare(ctx, issue, subscribers, sending=False)
    findings = mailing.check()
    probed = None if offline else probe_service(mailing.config)
    findings += [probed] if probed else []
    output.show_findings(findings)
    output.show_left_out(mailing.audience())
    warn_if_not_synced(mailing.config)
    if not doctor_ran(mailing.config):
        output.info(
            _(
                "`smakom doctor` has not checked this folder yet: run it once before "
                "the first send (the sign-in, the keyring, the service, the inbox and "
                "the sender domain's SPF, DKIM and DMARC)."
            )
        )
    if any(finding.severity == "error" for finding in findings):
        raise typer.Exit(ExitCode.ERROR)
    output.success(_("{issue} is ready to send.").format(issue=issue))


@app.command(help=_("Create a newsletter folder: smakom.toml, subscribers.csv and a first issue."))
def init(
    folder: Annotated[
        Path, typer.Argument(help=_("The folder to create or fill."), file_okay=False)
    ],
    example: Annotated[
        bool,
        typer.Option(
            "--example",
            help=_(
                "Fill it with the bundled example instead: the January 2021 issue with its "
                "images, settings and a small list, to try every command on."
            ),
        ),
    ] = False,
) -> None:
    import datetime as dt

    from smakom_cli.compose.scaffold import create_newsletter

    created = create_newsletter(folder, dt.date.today(), example=example, language=LANGUAGE)
    for path in created:
        output.success(_("created {path}").format(path=path))
    issue = next(path for path in created if path.parent.name == "issues")
    output.info(
        _("Next: edit {config}, then in {folder}: `smakom preview {issue}`.").format(
            config=folder / "smakom.toml", folder=folder, issue=issue.relative_to(folder).as_posix()
        )
    )


@app.command(
    help=_("Write the web version: a page per issue, an index and an Atom feed, ready to upload.")
)
def archive(
    ctx: typer.Context,
    issues: Annotated[
        list[Path] | None,
        typer.Argument(
            help=_(
                "The issues to publish (default: every .md in the issues folder); the "
                "index and the feed list exactly these."
            ),
            dir_okay=False,
            metavar=_("ISSUE"),
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help=_("The folder to write the site to (default: site/ in the newsletter folder)."),
            file_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    from smakom_cli.compose.archive import write_archive

    config = state(ctx).config()
    report = write_archive(config, issues or (), out)
    output.show_archive(report, config.newsletter.web_base_url)
