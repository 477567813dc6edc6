"""The command line only: one module per command group, the output (Rich) and exit codes. Each
command parses, calls one core function, shows and exits; nothing under `cli/` is imported by
the core. The environment is read here (the language aside, which `i18n` chooses) and handed
to the sign-in resolver.

May import: every part of the package.
"""

from smakom_cli.cli import audience, doctor, issue, returns, send, signin
from smakom_cli.cli.app import app

__all__ = ["app", "audience", "doctor", "issue", "main", "returns", "send", "signin"]


def main() -> None:
    """Entry point of the `smakom` console script."""
    app()
