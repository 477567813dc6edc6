"""`smakom --help` starts fast: help never imports what only the work of a command needs."""

from __future__ import annotations

import json
import subprocess
import sys

# Rich's Markdown (markdown-it), the CSS inliner, the keyring, the address checker, the sender.
HEAVY = ("rich.markdown", "markdown_it", "premailer", "keyring", "email_validator", "sender")

_HELP_OF_EVERY_COMMAND = """
import json, sys
import typer.main
from smakom_cli.cli import app

def helped(*args):
    try:
        app([*args, "--help"], prog_name="smakom")
    except SystemExit as exit:
        assert exit.code == 0, args
    return sorted(m for m in sys.modules if m.split(".")[0] in {"rich", "smakom_cli"}
                  or m in {"markdown_it", "premailer", "keyring", "email_validator"})

root = helped()
names = sorted(typer.main.get_command(app).commands)
every = {name: helped(name) for name in names}
print(json.dumps({"root": root, "commands": every}))
"""


def _loaded() -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _HELP_OF_EVERY_COMMAND],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return loaded


def test_help_loads_nothing_heavy() -> None:
    """`smakom --help` prints without Rich at all, and no command's `--help` loads Rich's
    Markdown, premailer, keyring, email-validator or the sender."""
    loaded = _loaded()
    root = loaded["root"]
    assert isinstance(root, list)
    assert not [module for module in root if module.startswith("rich")], root
    commands = loaded["commands"]
    assert isinstance(commands, dict)
    assert {"preview", "send", "check"} <= set(commands)
    for name, modules in commands.items():
        heavy = [m for m in modules if {m, m.split(".")[0], m.split(".")[-1]} & set(HEAVY)]
        assert not heavy, (name, heavy)
