"""click's own words ("Usage:", "Options", "Error:", "Aborted!", "No such option") in the
interface language.

typer 0.28 carries its own copy of click, whose messages are finished English sentences rather
than gettext lookups; typer itself asks gettext for a few words ("Options", "Aborted!"). So
typer's lookups are pointed at smakom's catalog, the command classes below write the usage line,
the help option and the sections through `_()`, and an error's English sentence is recognised
by the template it was made from and told again from that template's translation.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from typing import Any

import typer
import typer.core
from typer.core import TyperCommand, TyperGroup

from smakom_cli.i18n import N_, _

__all__ = ["Command", "Group", "translated"]

# typer's own gettext lookups (typer/core.py), listed so that they are extracted to the catalog.
_TYPER_WORDS = (
    N_("Arguments"),
    N_("Options"),
    N_("Commands"),
    N_("Aborted!"),
    N_("default: {default}"),
    N_("required"),
    N_("(dynamic)"),
    N_("env var: {var}"),
    N_("Missing command."),
    N_("No such command {name!r}."),
)
typer.core._ = _  # type: ignore[attr-defined]  # typer reads it at each lookup, module-wide

# The sentences click and typer make, as their source writes them; the first that matches whole
# is told again in the interface language (so a longer sentence comes before its beginning).
# An unknown sentence is shown as it is.
_CLICK_SENTENCES = (
    N_("{sentence}. Did you mean {suggestions}?"),
    N_("No such option: {name} (Possible options: {options})"),
    N_("No such option: {name}"),
    N_("No such command {name!r}."),
    N_("Missing command."),
    N_("Missing argument {name}."),
    N_("Missing option {name}."),
    N_("Missing parameter {name}."),
    N_("Got unexpected extra argument(s) ({arguments})"),
    N_("Option {name!r} does not take a value."),
    N_("Option {name!r} requires an argument."),
    N_("Option {name!r} requires {count} arguments."),
    N_("Argument {name!r} takes {count} values."),
    N_("Invalid value for {name}: {reason}"),
    N_("Invalid value: {reason}"),
    N_("{value!r} is not a valid integer."),
    N_("{value!r} is not a valid float."),
    N_("{value!r} is not a valid boolean. Recognized values: {values}"),
    N_("{value} is not in the range {range}."),
    N_("{value!r} is not one of {choices}."),
    N_("File {path!r} does not exist."),
    N_("Directory {path!r} does not exist."),
    N_("Path {path!r} does not exist."),
    N_("File {path!r} is a directory."),
    N_("Directory {path!r} is a file."),
    N_("Path {path!r} is a directory."),
    N_("Path {path!r} is a file."),
    N_("File {path!r} is not readable."),
    N_("Directory {path!r} is not readable."),
    N_("Path {path!r} is not readable."),
    N_("File {path!r} is not writable."),
    N_("Directory {path!r} is not writable."),
    N_("Path {path!r} is not writable."),
)
# The names click gives a value in the help, by argument name and by option type.
_ARGUMENT_NAMES = {"issue": N_("issue"), "folder": N_("folder")}
_VALUE_KINDS = {
    "directory": N_("<directory>"),
    "file": N_("<file>"),
    "path": N_("<path>"),
    "str": N_("<str>"),
    "int range": N_("<int range>"),
    "float range": N_("<float range>"),
}
_FIELD = re.compile(r"\{(\w+)(!r)?\}")


@cache
def _patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Each sentence as a pattern that captures its values (made on the first error only)."""
    patterns = []
    for template in _CLICK_SENTENCES:
        pieces, last = [], 0
        for field in _FIELD.finditer(template):
            pieces.append(re.escape(template[last : field.start()]))
            name = field.group(1)
            # A repr()'d value is captured inside its quotes and repr()'d again by the template.
            quoted = f"'(?P<{name}>.*)'" if field.group(2) else f"(?P<{name}>.*)"
            pieces.append(quoted)
            last = field.end()
        pieces.append(re.escape(template[last:]))
        patterns.append((re.compile("".join(pieces), re.DOTALL), template))
    return tuple(patterns)


def translated(sentence: str) -> str:
    """One of click's English sentences in the interface language (as it is, if unknown)."""
    for pattern, template in _patterns():
        match = pattern.fullmatch(sentence)
        if match:
            values = {name: translated(value) for name, value in match.groupdict().items()}
            return _(template).format(**values)
    return sentence


def _show(error: typer._click.exceptions.ClickException) -> None:
    """What click's `show()` prints, in the interface language, on standard error."""
    context = getattr(error, "ctx", None)
    if isinstance(error, typer._click.exceptions.NoArgsIsHelpError):
        typer.echo(error.format_message(), err=True)
        return
    if context is not None:
        typer.echo(context.get_usage(), err=True)
        if context.command.get_help_option(context) is not None:
            hint = _("Try '{command} {option}' for help.").format(
                command=context.command_path, option=context.help_option_names[0]
            )
            typer.echo(hint, err=True)
        typer.echo(err=True)
    typer.echo(_("Error: {message}").format(message=translated(error.format_message())), err=True)


class _Words:
    """The parts of a command's help and usage that click writes in English."""

    options_metavar: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options_metavar = _("[OPTIONS]")
        # What click would show for a value without a metavar of its own, in the interface
        # language: "<file>" for a --config PATH, "issue" for the argument.
        for param in getattr(self, "params", ()):
            if param.metavar is None and not getattr(param, "is_flag", False):
                if param.param_type_name == "argument":
                    shown = _ARGUMENT_NAMES.get(param.name or "")
                else:
                    shown = _VALUE_KINDS.get(param.type.name)
                if shown is not None:
                    param.metavar = _(shown)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        pieces = self.collect_usage_pieces(ctx)  # type: ignore[attr-defined]
        formatter.write_usage(ctx.command_path, " ".join(pieces), _("Usage: "))

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = _("Show this message and exit.")
        return option


class Command(_Words, TyperCommand):
    """A command whose help and usage line are in the interface language."""


class Group(_Words, TyperGroup):
    """A group whose help, usage line and errors are in the interface language."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subcommand_metavar = _("COMMAND [ARGS]...")

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """typer's main, with click's errors and "Aborted!" shown in the interface language."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer._click.exceptions.ClickException as error:
            _show(error)
            code = error.exit_code
        except typer.Abort:
            typer.echo(_("Aborted!"), err=True)
            code = 1
        sys.exit(code if isinstance(code, int) else 0)
