"""The suppression list: who asked not to get the newsletter, kept in `unsubscribed.csv`.

The file belongs to the tool and is separate from the subscriber list, so replacing
subscribers.csv with a fresh export cannot mail anyone who opted out. It is a log of events
(one row each); an address is suppressed when its latest event is `unsubscribed`.

Writers hold a lock file and replace the file atomically, so concurrent commands lose
nothing and a crash leaves the old or the new file. Readers take no lock. A damaged file is
an error, never an empty list: reading it as empty would mail people who opted out.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from smakom_cli.errors import SmakomError
from smakom_cli.subscribers import detect_encoding, numbered_rows, parse_address

HEADER = ("email", "action", "when", "source", "reason")
UNSUBSCRIBED = "unsubscribed"
RESUBSCRIBED = "resubscribed"
LOCK_TIMEOUT = 30.0
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_NOT_READ = (-1, -1, -1)


@dataclass(frozen=True)
class Change:
    """What one address's unsubscribe or resubscribe did; `already` means nothing changed."""

    email: str
    action: str
    already: bool


def protect(cell: str) -> str:
    """Make a cell safe to open in a spreadsheet by prefixing `'` (undone by `unprotect`)."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def unprotect(cell: str) -> str:
    """Undo `protect`: every written cell that starts with `'` got exactly one added."""
    return cell.removeprefix("'")


class SuppressionList:
    """The unsubscribed addresses in one file; safe to share between a send's threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._cache_lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = _NOT_READ
        self._suppressed: frozenset[str] = frozenset()

    def suppressed(self) -> frozenset[str]:
        """The keys whose latest event is `unsubscribed`, re-read only when the file changed."""
        with self._cache_lock:
            signature = _signature(self.path)
            if signature != self._signature:
                self._suppressed = frozenset(
                    key for key, action in self._events().items() if action == UNSUBSCRIBED
                )
                self._signature = signature
            return self._suppressed

    def is_suppressed(self, key: str) -> bool:
        """True when this address (lowercase key) must not be mailed; cheap to call per message."""
        return key in self.suppressed()

    def unsubscribe(
        self,
        addresses: Sequence[str],
        *,
        source: str,
        reason: str = "",
        when: datetime | None = None,
    ) -> list[Change]:
        """Record that these addresses opted out; an invalid one stops it before any write.

        `when` is the moment the reader asked (a click on the web, a bounce's date); now
        when not given.
        """
        return self._record(addresses, UNSUBSCRIBED, source, reason, when)

    def resubscribe(
        self,
        addresses: Sequence[str],
        *,
        source: str,
        reason: str = "",
        when: datetime | None = None,
    ) -> list[Change]:
        """Record that these addresses opted back in."""
        return self._record(addresses, RESUBSCRIBED, source, reason, when)

    def _record(
        self,
        addresses: Sequence[str],
        action: str,
        source: str,
        reason: str,
        when: datetime | None,
    ) -> list[Change]:
        keys = [parse_address(address).key for address in addresses]
        stamp = (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            with FileLock(self._lock_path, timeout=LOCK_TIMEOUT):
                return self._record_locked(keys, action, source, reason, stamp)
        except Timeout:
            raise SmakomError(
                f"{self.path.name} stayed locked by another smakom command for "
                f"{LOCK_TIMEOUT:.0f} seconds. Wait for it to finish and try again."
            ) from None

    def _record_locked(
        self, keys: list[str], action: str, source: str, reason: str, when: str
    ) -> list[Change]:
        """Read, change and replace the file; only ever called while holding the lock."""
        _remove_stale_temporary_files(self.path)
        text = self._read_text()
        latest = _parse(text, self.path.name) if text is not None else {}
        changes: list[Change] = []
        new_rows: list[tuple[str, ...]] = []
        for key in keys:
            is_suppressed = latest.get(key) == UNSUBSCRIBED
            already = is_suppressed if action == UNSUBSCRIBED else not is_suppressed
            if not already:
                new_rows.append((key, action, when, source, reason))
                latest[key] = action
            changes.append(Change(email=key, action=action, already=already))
        if new_rows:
            _replace(self.path, _append(text, new_rows))
        return changes

    def latest_times(self) -> dict[str, datetime]:
        """When each address's latest event happened (UTC); for ordering events from afar."""
        text = self._read_text()
        if text is None:
            return {}
        _parse(text, self.path.name)  # any damage is an error here too
        times: dict[str, datetime] = {}
        rows = numbered_rows(io.StringIO(text, newline=""), ",", self.path.name)
        next(rows, None)
        for _line, row in rows:
            email, _action, when, _source, _reason = (unprotect(cell).strip() for cell in row)
            moment = datetime.fromisoformat(when)
            times[_key(email)] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return times

    def _events(self) -> dict[str, str]:
        text = self._read_text()
        return _parse(text, self.path.name) if text is not None else {}

    def _read_text(self) -> str | None:
        """The whole file, or None when nobody has unsubscribed yet (it does not exist)."""
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as file:
                return file.read()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            raise SmakomError(
                f"{self.path} is not UTF-8 text: was it saved from a spreadsheet? "
                "Restore it from a backup; smakom will not send while it is damaged."
            ) from None
        except OSError as exc:
            raise SmakomError(f"{self.path} cannot be read ({exc.strerror or exc}).") from None


def read_addresses(path: Path) -> list[str]:
    """The addresses in a plain list, one a line; blank lines and `#` comments are skipped.

    Every line is checked first, so a typo stops the command before anything is written.
    """
    addresses: list[str] = []
    try:
        with path.open(encoding=detect_encoding(path)) as file:
            for number, line in enumerate(file, start=1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                try:
                    parse_address(text)
                except SmakomError as exc:
                    raise SmakomError(f"{path.name} line {number}: {exc}.") from None
                addresses.append(text)
    except FileNotFoundError:
        raise SmakomError(f"{path} does not exist.") from None
    except OSError as exc:
        raise SmakomError(f"{path} cannot be read ({exc.strerror or exc}).") from None
    return addresses


def _parse(text: str, name: str) -> dict[str, str]:
    """The latest action per key; any damage is an error naming its line."""
    fix = "Fix or remove that line, or restore the file from a backup."
    rows = numbered_rows(io.StringIO(text, newline=""), ",", name)
    first = next(rows, None)
    if first is None:
        raise SmakomError(f"{name} is empty but should start with the header row. {fix}")
    line, header = first
    if tuple(cell.strip().lower() for cell in header) != HEADER:
        raise SmakomError(
            f"{name} line {line}: the header should be '{','.join(HEADER)}', "
            f"not '{','.join(header)}'. {fix}"
        )
    latest: dict[str, str] = {}
    for line, row in rows:
        if len(row) != len(HEADER):
            raise SmakomError(
                f"{name} line {line}: {len(row)} fields instead of {len(HEADER)}. {fix}"
            )
        email, action, when, _source, _reason = (unprotect(cell).strip() for cell in row)
        if action not in (UNSUBSCRIBED, RESUBSCRIBED):
            raise SmakomError(
                f"{name} line {line}: the action must be '{UNSUBSCRIBED}' or '{RESUBSCRIBED}', "
                f"not '{action}'. {fix}"
            )
        try:
            datetime.fromisoformat(when)
        except ValueError:
            raise SmakomError(
                f"{name} line {line}: '{when}' is not a time like 2025-03-01T09:30:00Z. {fix}"
            ) from None
        try:
            key = _key(email)
        except SmakomError as exc:
            raise SmakomError(f"{name} line {line}: {exc}. {fix}") from None
        latest[key] = action
    return latest


# The file is read again whenever it changes, also during a send; checking an address costs
# about 40 µs. The cache is the suppression list's own, so that streaming a long subscriber
# list does not fill it (memory must not grow with the list).
@functools.lru_cache(maxsize=1 << 15)
def _key(email: str) -> str:
    return parse_address(email).key


def _append(text: str | None, rows: list[tuple[str, ...]]) -> bytes:
    """The file's text (kept byte for byte) with new rows added, as UTF-8 with a BOM.

    The BOM makes Excel read å, ä and ö correctly when someone opens the file.
    """
    buffer = io.StringIO(newline="")
    if text is None:
        csv.writer(buffer).writerow(HEADER)
    else:
        buffer.write(text)
        if not text.endswith(("\n", "\r")):
            buffer.write("\r\n")
    csv.writer(buffer).writerows([protect(cell) for cell in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def _replace(path: Path, data: bytes) -> None:
    """Write a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    # The rename itself is only durable once the folder is flushed; Windows cannot open a
    # folder for that (and its NTFS rename is journaled).
    if os.name != "nt":
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _remove_stale_temporary_files(path: Path) -> None:
    """Delete what a writer killed mid-write left behind; safe because we hold the lock."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes whenever the file is replaced: inode, size and modification time."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns)
