"""All terminal output goes through here, so every command speaks with one voice."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """One red line on standard error: what went wrong and what to do."""
    err_console.print(f"[bold red]Error:[/] {message}", markup=True, soft_wrap=True)


def warning(message: str) -> None:
    err_console.print(f"[yellow]Warning:[/] {message}", soft_wrap=True)


def success(message: str) -> None:
    console.print(f"[green]✓[/] {message}", soft_wrap=True)


def info(message: str) -> None:
    console.print(message, soft_wrap=True)
