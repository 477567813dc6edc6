"""Locks between smakom processes (filelock, on Windows and macOS too): a lock that stays
taken is one sentence saying what to wait for, never filelock's `Timeout`.

A process that is killed lets go of its locks with it, so no lock is ever left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

WAIT_SECONDS = 30.0
"""How long a command waits for another's short update of a shared file (the lists, the
witness, the inbox log) before it gives up."""


def take(lock_file: Path, *, timeout: float, busy: Callable[[], str]) -> FileLock:
    """The lock, taken (release it); held by another process past `timeout` seconds (0:
    at once), a `SmakomError` in `busy()`'s words."""
    lock = FileLock(lock_file, thread_local=False)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise SmakomError(busy()) from None
    return lock


@contextmanager
def holding(lock_file: Path, *, timeout: float, busy: Callable[[], str]) -> Iterator[None]:
    """`take` for a `with` block."""
    lock = take(lock_file, timeout=timeout, busy=busy)
    try:
        yield
    finally:
        lock.release()


def stayed_locked(file: Path) -> Callable[[], str]:
    """The words for a shared file another command kept locked for `WAIT_SECONDS`."""
    return lambda: _(
        "{file} stayed locked by another smakom command for {seconds:.0f} seconds. "
        "Wait for it to finish and try again."
    ).format(file=file, seconds=WAIT_SECONDS)
