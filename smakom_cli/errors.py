"""The one exception family for mistakes a user can fix, and the exit codes a command ends with."""

from enum import IntEnum

from smakom_cli.i18n import N_, _


class SmakomError(Exception):
    """A problem in the user's input or setup, told as one sentence they can act on.

    The command line prints the message as a single red line and exits non-zero;
    it never shows a traceback for these (unless `--debug` is given).
    """


class ExitCode(IntEnum):
    """What a command exits with, so a cron job can tell the endings apart.

    `smakom send --help` and the docs' table of exit codes are written from `meaning`.
    """

    DONE = 0
    ERROR = 1
    USAGE = 2
    FAILED = 3
    RESUMABLE = 4

    @property
    def meaning(self) -> str:
        return _(_MEANINGS[self])


_MEANINGS = {
    ExitCode.DONE: N_("everything done (or nothing left to do)"),
    ExitCode.ERROR: N_("an error before anything was sent"),
    ExitCode.USAGE: N_("options that do not go together"),
    ExitCode.FAILED: N_(
        "sent, but some recipients failed for good or are uncertain (the report names them), "
        "or only uncertain ones are left"
    ),
    ExitCode.RESUMABLE: N_(
        "interrupted or stopped by a fault part-way: run the same command again to send the rest"
    ),
}
