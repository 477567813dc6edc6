"""The `smakom` application: the group that turns errors into one red line, the global options
and the option aliases every command group uses.

Nothing here reads CSV, builds MIME or talks SMTP; that lives in the modules named after
each concept. Heavy imports happen inside the commands so `smakom --help` starts fast.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.models import CommandFunctionType

from smakom_cli.cli.click_words import Command, Group
from smakom_cli.errors import ExitCode, SmakomError
from smakom_cli.i18n import _
from smakom_cli.lazy import lazy_module

if TYPE_CHECKING:
    from smakom_cli.cli import output
    from smakom_cli.config import Config
else:
    # `smakom --help` never prints through Rich.
    output = lazy_module("smakom_cli.cli.output")

__all__ = [
    "IssueArgument",
    "SubscribersOption",
    "app",
    "output",
    "state",
    "usage_error",
]


# No room for what is written: a full disk, a quota, a limit on file sizes (`ulimit -f`).
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _os_error_line(exc: OSError) -> str:
    """The operating system's words and the file they are about, with what to do when the
    cause is that the file could not grow."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    if exc.errno in _NO_ROOM:
        return _(
            "{path} could not be written ({reason}): make room on the disk, or have the "
            "limit on file sizes raised, then run the command again."
        ).format(path=exc.filename, reason=reason)
    return f"{reason}: {exc.filename}"


class _Group(Group):
    """Turns every user error into one red line and `ExitCode.ERROR`, in this one place."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SmakomError as exc:
            if ctx.meta.get("smakom.debug"):
                raise
            output.error(str(exc))
            raise typer.Exit(ExitCode.ERROR) from None
        except OSError as exc:
            if ctx.meta.get("smakom.debug"):
                raise
            output.error(_os_error_line(exc))
            raise typer.Exit(ExitCode.ERROR) from None

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """`--debug` anywhere before a lone `--` is the global option: it is what one adds at
        the end of the command that has just failed (`smakom send issues/2021-01.md --debug`)."""
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:end]:
            args = ["--debug", *(arg for arg in args[:end] if arg != "--debug"), *args[end:]]
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command with its whole one-line summary (click cuts it at about 45 letters)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=200)))
        if rows:
            with formatter.section(_("Commands")):
                formatter.write_dl(rows)


class _Typer(typer.Typer):
    """Every command's help and usage line in the interface language."""

    def command(
        self, name: str | None = None, **settings: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, **{"cls": Command, **settings})


app = _Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    # Plain help: Typer's Rich help imports Rich's Markdown (markdown-it) and tracebacks on
    # every `--help`, most of its start-up time.
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
    help=_("Write, check, preview and send the SmåKom newsletter."),
)


@dataclass
class _State:
    config_path: Path | None

    def config(self) -> Config:
        from smakom_cli.config import find_config, load_config

        return load_config(self.config_path or find_config(Path.cwd()))


def state(ctx: typer.Context) -> _State:
    state = ctx.find_root().obj
    assert isinstance(state, _State)
    return state


def _version(value: bool) -> None:
    if value:
        from smakom_cli import __version__

        output.info(f"smakom {__version__}")
        raise typer.Exit()


@app.callback(help=_("Write, check, preview and send the SmåKom newsletter."))
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help=_("The newsletter's smakom.toml (default: found in this folder or a parent)."),
            dir_okay=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help=_("Show the full traceback when something fails."))
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help=_("Show the version.")),
    ] = False,
) -> None:
    ctx.obj = _State(config_path=config)
    ctx.meta["smakom.debug"] = debug


SubscribersOption = Annotated[
    Path | None,
    typer.Option(
        "--subscribers",
        help=_("The subscriber list (CSV) to use instead of the one named in smakom.toml."),
        dir_okay=False,
        metavar=_("PATH"),
        show_default=False,
    ),
]
IssueArgument = Annotated[
    Path, typer.Argument(help=_("The issue file, e.g. issues/2021-01.md."), dir_okay=False)
]


def usage_error(sentence: str) -> NoReturn:
    output.error(sentence)
    raise typer.Exit(ExitCode.USAGE)
