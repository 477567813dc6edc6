"""The command line only: one module per command group, the output (Rich) and exit codes. Each
command parses, calls the core, shows and exits; nothing under `cli/` is imported by the core.
"""

from smakom_cli.cli import audience, doctor, issue, returns, send, signin
from smakom_cli.cli.app import app

__all__ = ["app", "audience", "doctor", "issue", "main", "returns", "send", "signin"]


def main() -> None:
    """Entry point of the `smakom` console script."""
    app()
