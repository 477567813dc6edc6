"""The newsletter folder as `smakom check` reads it: smakom.toml, the lists and the newest issue."""

from __future__ import annotations

from pathlib import Path

from smakom_cli.config import Config, load_config
from smakom_cli.doctor.findings import Finding
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

# Any key signs links of the same length; the doctor never needs the list's real one.
_SAMPLE_KEY = bytes(32)


def check_settings(path: Path) -> tuple[Config | None, Finding]:
    """smakom.toml read and checked as every command reads it; None when it cannot be."""
    try:
        config = load_config(path)
    except SmakomError as exc:
        return None, Finding(
            "problem", path.name, str(exc), _("Correct {name}.").format(name=path.name)
        )
    return config, Finding("ok", path.name, _("read and checked ({path})").format(path=config.path))


def check_issues(config: Config) -> Finding:
    """The newest issue in the issues folder, checked exactly as `smakom check ISSUE` does."""
    from smakom_cli.delivery.mailing import prepare

    folder = config.issues_dir
    what = f"{config.newsletter.issues}/"
    if not folder.is_dir():
        return Finding(
            "problem",
            what,
            _("the issues folder {folder} does not exist").format(folder=folder),
            _("Create it, or correct [newsletter] issues in smakom.toml."),
        )
    issues = sorted(folder.glob("*.md"))
    if not issues:
        return Finding(
            "warning",
            what,
            _("no issue in {folder} yet").format(folder=folder),
            _("Write one, e.g. issues/2026-01.md."),
        )
    newest = issues[-1]
    what = f"{config.newsletter.issues}/{newest.name}"
    command = _("Run `smakom check {issues}/{name}` and fix what it says.").format(
        issues=config.newsletter.issues, name=newest.name
    )
    try:
        mailing = prepare(config, newest, secret=_SAMPLE_KEY)
        mailing.suppression.suppressed()
        findings = mailing.check()
    except SmakomError as exc:
        return Finding("problem", what, str(exc), command)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        first = errors[0]
        return Finding(
            "problem",
            what,
            _("{count} error(s) stop a send, the first: {where}: {message}").format(
                count=len(errors), where=first.where, message=first.message
            ),
            command,
        )
    if findings:
        return Finding(
            "warning",
            what,
            _("{count} warning(s) worth a look").format(count=len(findings)),
            command,
        )
    return Finding("ok", what, _("the newest issue passes `smakom check`"))
