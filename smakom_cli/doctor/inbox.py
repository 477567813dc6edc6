"""The mailbox `smakom inbox` reads: the sign-in, the folder it reads, the folders it sorts into."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from smakom_cli.config import Config
from smakom_cli.doctor.findings import Finding, shown
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.signin.resolver import Login


def check_inbox(config: Config, login: Callable[[], Login], timeout: float) -> Finding:
    """Sign in over IMAP and look for the folders; the mailbox is never changed."""
    from smakom_cli.returns.imap import missing_folders

    inbox = config.inbox
    if not inbox.host or not inbox.username:
        return Finding(
            "warning",
            _("inbox"),
            _("no [inbox] host and username, so bounces and unsubscribe replies are not read"),
            _(
                "Set [inbox] host and username to the mailbox the newsletter's replies reach, "
                "then run `smakom login --inbox`."
            ),
        )
    what = _("inbox ({username} at {host}:{server_port})").format(
        username=inbox.username, host=inbox.host, server_port=inbox.server_port
    )
    inbox = dataclasses.replace(inbox, timeout=min(inbox.timeout, timeout))
    try:
        missing = missing_folders(inbox, login())
    except SmakomError as exc:
        return Finding("problem", what, shown(str(exc), 400))
    if inbox.folder in missing:
        return Finding(
            "problem",
            what,
            _("signed in, but the mailbox has no folder '{folder}' to read").format(
                folder=inbox.folder
            ),
            _("Correct [inbox] folder in smakom.toml."),
        )
    if missing:
        folders = ", ".join(f"'{name}'" for name in missing)
        return Finding(
            "ok",
            what,
            _(
                "signed in; reads '{folder}'; `smakom inbox` creates {folders} the first time "
                "it moves mail there"
            ).format(folder=inbox.folder, folders=folders),
        )
    return Finding(
        "ok",
        what,
        _("signed in; reads '{folder}'; the folders it sorts into exist").format(
            folder=inbox.folder
        ),
    )
