"""Every command, option and argument of smakom explains itself in `--help`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.errors import SmakomError


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Each command of the tree below `command`, with the words that call it."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from commands(sub, (*path, name))


EVERY_COMMAND = list(commands(typer.main.get_command(app)))
NAMES = [" ".join(("smakom", *path)) for path, _ in EVERY_COMMAND]


def test_the_tree_holds_every_command() -> None:
    """The walk finds the commands a user knows, so the checks below cover them."""
    assert {"smakom send", "smakom check", "smakom login", "smakom inbox"} <= set(NAMES)


@pytest.mark.parametrize(("path", "command"), EVERY_COMMAND, ids=NAMES)
def test_every_command_and_parameter_has_help(path: tuple[str, ...], command: Any) -> None:
    """No command, option or argument shows up in `--help` without a sentence saying what
    it does."""
    assert (command.help or "").strip(), f"`smakom {' '.join(path)}` has no help text"
    silent = [
        "/".join(parameter.opts)
        for parameter in command.params
        if parameter.name != "help" and not (getattr(parameter, "help", None) or "").strip()
    ]
    assert not silent, f"`smakom {' '.join(path)}`: no help for {', '.join(silent)}"


@pytest.mark.parametrize(("path", "command"), EVERY_COMMAND, ids=NAMES)
def test_every_command_help_prints_and_exits_0(
    runner: CliRunner, path: tuple[str, ...], command: Any
) -> None:
    """`smakom … --help` works for every command and lists each of its options."""
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    for parameter in command.params:
        if not getattr(parameter, "hidden", False) and parameter.param_type_name == "option":
            assert parameter.opts[0] in result.output, parameter.opts


def test_send_help_lists_every_exit_code(runner: CliRunner) -> None:
    """`smakom send --help` says what each exit code means, so a cron job can be written."""
    from smakom_cli.errors import ExitCode

    result = runner.invoke(app, ["send", "--help"])
    text = " ".join(result.output.split())
    for code in ExitCode:
        assert f"{code.value} {code.meaning}" in text, code


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_before_or_after_the_command(
    runner: CliRunner, newsletter: Path, where: str
) -> None:
    """`--debug` added at the end of the command that just failed works as at the front."""
    words = ["check", "issues/no-such-issue.md"]
    args = ["--debug", *words] if where == "before" else [*words, "--debug"]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, SmakomError), result.output
    assert "no-such-issue.md" in str(result.exception)


def test_debug_after_a_lone_dash_dash_is_an_argument(runner: CliRunner, newsletter: Path) -> None:
    """After `--`, '--debug' is a word like any other, not the option."""
    result = runner.invoke(app, ["unsubscribe", "--", "--debug"])
    assert result.exit_code == 1
    assert "'--debug' is not an e-mail address" in result.output
    assert "Traceback" not in result.output
