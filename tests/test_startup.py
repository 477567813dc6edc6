"""`smakom --help`, `preview` and a dry run start fast: each imports only what its own work
needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


# What a preview or a dry run does not use: an HTTP client (premailer imports requests only to
# fetch external stylesheets, which smakom never lets it), the keyring when the link-signing
# key comes from the environment, the progress bar of a real send, the sender and SMTP logins.
NOT_FOR_LOOKING = ("requests", "urllib3", "chardet", "keyring", "rich.progress", "sender")

_MODULES_AFTER = """
import json, sys
from smakom_cli.cli import app

try:
    app(sys.argv[1:], prog_name="smakom")
except SystemExit as exit:
    assert not exit.code, exit.code
# A module imported on first use (smakom_cli.lazy) that was never used was not loaded.
print(json.dumps(sorted(n for n, m in sys.modules.items() if type(m).__name__ != "_LazyModule")))
"""


def _modules_after(folder: Path, *args: str) -> list[str]:
    environment = os.environ | {"SMAKOM_UNSUBSCRIBE_SECRET": "s" * 32}
    result = subprocess.run(
        [sys.executable, "-c", _MODULES_AFTER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=folder,
        env=environment,
    )
    modules: list[str] = json.loads(result.stdout.splitlines()[-1])
    return modules


def _unneeded(modules: list[str]) -> list[str]:
    return [m for m in modules if {m, m.split(".")[0], m.split(".")[-1]} & set(NOT_FOR_LOOKING)]


def test_preview_loads_no_http_client_or_keyring(newsletter: Path) -> None:
    """`smakom preview` with the link key in the environment loads no HTTP client, no
    keyring and no send machinery: it starts faster."""
    modules = _modules_after(newsletter, "preview", "issues/2021-01.md")
    assert "premailer" in modules  # the preview did inline the CSS
    assert not _unneeded(modules), _unneeded(modules)


def test_dry_run_loads_no_http_client_or_keyring(newsletter: Path) -> None:
    """`smakom send --dry-run` with the link key in the environment loads no HTTP client,
    no keyring and no send machinery either."""
    modules = _modules_after(
        newsletter, "send", "issues/2021-01.md", "--dry-run", "--outbox", "dry-run"
    )
    assert (newsletter / "dry-run").is_dir()
    assert not _unneeded(modules), _unneeded(modules)
