"""The newsletter folder as `smakom check` reads it: smakom.toml, the lists and the newest issue."""

from __future__ import annotations

from pathlib import Path

from smakom_cli.config import Config, load_config
from smakom_cli.doctor.findings import Finding
from smakom_cli.errors import SmakomError

# Any key signs links of the same length; the doctor never needs the list's real one.
_SAMPLE_KEY = bytes(32)


def check_settings(path: Path) -> tuple[Config | None, Finding]:
    """smakom.toml read and checked as every command reads it; None when it cannot be."""
    try:
        config = load_config(path)
    except SmakomError as exc:
        return None, Finding("problem", path.name, str(exc), f"Correct {path.name}.")
    return config, Finding("ok", path.name, f"read and checked ({config.path})")


def check_issues(config: Config) -> Finding:
    """The newest issue in the issues folder, checked exactly as `smakom check ISSUE` does."""
    from smakom_cli.delivery.mailing import prepare

    folder = config.issues_dir
    what = f"{config.newsletter.issues}/"
    if not folder.is_dir():
        return Finding(
            "problem",
            what,
            f"the issues folder {folder} does not exist",
            "Create it, or correct [newsletter] issues in smakom.toml.",
        )
    issues = sorted(folder.glob("*.md"))
    if not issues:
        return Finding(
            "warning", what, f"no issue in {folder} yet", "Write one, e.g. issues/2026-01.md."
        )
    newest = issues[-1]
    what = f"{config.newsletter.issues}/{newest.name}"
    command = f"Run `smakom check {config.newsletter.issues}/{newest.name}` and fix what it says."
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
            f"{len(errors)} error(s) stop a send, the first: {first.where}: {first.message}",
            command,
        )
    if findings:
        return Finding("warning", what, f"{len(findings)} warning(s) worth a look", command)
    return Finding("ok", what, "the newest issue passes `smakom check`")
