"""The one exception family for mistakes a user can fix."""


class SmakomError(Exception):
    """A problem in the user's input or setup, told as one sentence they can act on.

    The command line prints the message as a single red line and exits non-zero;
    it never shows a traceback for these (unless `--debug` is given).
    """
