"""The `smakom` command line: parse options, call one core function, print, exit.

Nothing here reads CSV, builds MIME or talks SMTP; that lives in the modules named after
each concept. Heavy imports happen inside the commands so `smakom --help` starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from smakom_cli import __version__, output
from smakom_cli.errors import SmakomError

if TYPE_CHECKING:
    import click

    from smakom_cli.config import Config


class _Group(TyperGroup):
    """Turns every user error into one red line and exit code 1, in this one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SmakomError as exc:
            if ctx.meta.get("smakom.debug"):
                raise
            output.error(str(exc))
            raise typer.Exit(1) from None
        except OSError as exc:
            if ctx.meta.get("smakom.debug"):
                raise
            output.error(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    help="Write, check, preview and send the SmåKom newsletter.",
)


@dataclass
class _State:
    config_path: Path | None

    def config(self) -> Config:
        from smakom_cli.config import find_config, load_config

        return load_config(self.config_path or find_config(Path.cwd()))


def _state(ctx: typer.Context) -> _State:
    state = ctx.find_root().obj
    assert isinstance(state, _State)
    return state


def _version(value: bool) -> None:
    if value:
        output.info(f"smakom {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The newsletter's smakom.toml (default: found in this folder or a parent).",
            dir_okay=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when something fails.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Write, check, preview and send the SmåKom newsletter."""
    ctx.obj = _State(config_path=config)
    ctx.meta["smakom.debug"] = debug


def main() -> None:
    """Entry point of the `smakom` console script."""
    app()
