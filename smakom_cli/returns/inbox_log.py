"""`inbox.jsonl`: every message `smakom inbox` has sorted, and what it made of it.

One JSON object a line, beside `unsubscribed.csv`. It is how a second run does nothing twice
(by folder, UIDVALIDITY and UID, and by Message-ID), how a move cut off by a dropped
connection is finished on the next run, and where soft bounces are counted per issue. A
line is written before the message is moved, and after any unsubscribe it causes, so a run
stopped anywhere leaves nothing half-recorded.

A person may edit the file (remove a soft bounce to reset its count, say), so it is read
strictly: a damaged line is an error naming it, never skipped. Writers hold a lock and
append one line at a time, synced to disk; only a last line cut short by a crash, which
recorded nothing yet acted on, is dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from smakom_cli.atomic import PRIVATE
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.locks import WAIT_SECONDS, holding, stayed_locked
from smakom_cli.returns.bounces import Kind

Action = Literal["move", "leave"]
KINDS: frozenset[str] = frozenset(get_args(Kind))
ACTIONS: frozenset[str] = frozenset(("move", "leave"))
_FIELDS = {
    "time": str,
    "folder": str,
    "uidvalidity": int,
    "uid": int,
    "message_id": str,
    "kind": str,
    "addresses": list,
    "issue": str,
    "reason": str,
    "action": str,
    "to": str,
}


@dataclass(frozen=True)
class Entry:
    """One sorted message: where it was, what it is, whom it is about, where it went."""

    time: str
    folder: str
    uidvalidity: int
    uid: int
    message_id: str
    kind: Kind
    addresses: tuple[str, ...]
    issue: str
    reason: str
    action: Action
    to: str
    """The folder it is moved to ("" when it stays)."""


class InboxLog:
    """The entries of `inbox.jsonl`, in order, with the indexes a run looks things up by.

    Read once per run; each sorted message then adds one line at the end of the file and
    to the indexes, so a run's cost grows with its new messages, not with the log.
    """

    def __init__(self, path: Path, entries: Iterable[Entry] = (), *, torn_at: int = -1) -> None:
        self.path = path
        self._entries: list[Entry] = []
        self._by_place: dict[tuple[str, int], dict[int, Entry]] = {}
        self._by_message_id: dict[str, Entry] = {}
        self._soft: dict[str, set[str]] = {}
        self._torn_at = torn_at
        for entry in entries:
            self._index(entry)

    @classmethod
    def read(cls, path: Path) -> InboxLog:
        """The log at `path`; empty when there is none yet; an error naming a damaged line."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise SmakomError(
                _("{path} cannot be read ({value}).").format(path=path, value=exc.strerror or exc)
            ) from None
        entries, torn_at = _parse_file(data, path.name)
        return cls(path, entries, torn_at=torn_at)

    @property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries)

    def seen(self, folder: str, uidvalidity: int) -> dict[int, Entry]:
        """The entries of one folder's current UIDs, by UID."""
        return dict(self._by_place.get((folder, uidvalidity), {}))

    def by_message_id(self) -> dict[str, Entry]:
        return dict(self._by_message_id)

    def soft_issues(self, key: str) -> frozenset[str]:
        """The issues on which this address bounced softly."""
        return frozenset(self._soft.get(key, ()))

    def record(self, entry: Entry) -> InboxLog:
        """Add one entry in memory only (a dry run counts as the real run would)."""
        self._index(entry)
        return self

    def append(self, entry: Entry) -> InboxLog:
        """Add one entry at the end of the file, synced to disk, and to this log.

        One line appended in one write: a crash leaves the file as it was or, at worst
        (a power cut mid-write), a last line cut short, which is dropped at the next
        append; the message it was about had not been moved yet and is sorted again.
        """
        line = (json.dumps(_record(entry), ensure_ascii=False) + "\n").encode("utf-8")
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            with holding(lock, timeout=WAIT_SECONDS, busy=stayed_locked(self.path)):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._write(line)
        except OSError as exc:
            raise SmakomError(
                _("{path} cannot be written ({value}).").format(
                    path=self.path, value=exc.strerror or exc
                )
            ) from None
        return self._index(entry)

    def _write(self, line: bytes) -> None:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
        descriptor = os.open(self.path, flags, PRIVATE)
        with os.fdopen(descriptor, "r+b") as file:
            end = file.seek(0, os.SEEK_END)
            if self._torn_at >= 0:
                file.truncate(self._torn_at)
                end = self._torn_at
                self._torn_at = -1
            if end:
                file.seek(end - 1)
                if file.read(1) != b"\n":
                    line = b"\n" + line
            file.seek(0, os.SEEK_END)
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    def _index(self, entry: Entry) -> InboxLog:
        self._entries.append(entry)
        self._by_place.setdefault((entry.folder, entry.uidvalidity), {})[entry.uid] = entry
        if entry.message_id:
            self._by_message_id[entry.message_id] = entry
        if entry.kind == "soft" and entry.issue:
            for key in entry.addresses:
                self._soft.setdefault(key, set()).add(entry.issue)
        return self


def _parse_file(data: bytes, name: str) -> tuple[list[Entry], int]:
    """The entries, and where a last line cut short by a crash starts (-1 when none).

    Only a last line without its line end that is not an entry counts as cut short; any
    other damage is an error naming the line (`parse`).
    """
    if data and not data.endswith(b"\n"):
        start = data.rfind(b"\n") + 1
        try:
            tail = parse(data[start:], name)
        except SmakomError:
            return parse(data[:start], name), start
        return [*parse(data[:start], name), *tail], -1
    return parse(data, name), -1


def parse(data: bytes, name: str) -> list[Entry]:
    """Every line as an entry; any damage is an error naming the line."""
    fix = _("Fix or remove that line, or restore the file from a backup.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SmakomError(_("{name} is not UTF-8 text. {fix}").format(name=name, fix=fix)) from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(_entry(json.loads(line)))
        except ValueError as exc:
            raise SmakomError(
                _("{name} line {number}: {exc}. {fix}").format(
                    name=name, number=number, exc=exc, fix=fix
                )
            ) from None
    return entries


_FIELD_NAMES = frozenset(_FIELDS)


def _entry(record: object) -> Entry:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    unknown = record.keys() - _FIELD_NAMES
    if unknown:
        raise ValueError(f"unknown key '{sorted(unknown)[0]}'")
    for key, kind in _FIELDS.items():
        if key not in record:
            raise ValueError(f"the key '{key}' is missing")
        value = record[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(_("'{key}' has the wrong type").format(key=key))
    if record["kind"] not in KINDS:
        raise ValueError(_("the kind must be one of {join}").format(join=", ".join(sorted(KINDS))))
    if record["action"] not in ACTIONS:
        raise ValueError(_("the action must be 'move' or 'leave'"))
    if record["uid"] < 1 or record["uidvalidity"] < 0:
        raise ValueError(_("the uid must be a positive number"))
    if record["action"] == "move" and not record["to"]:
        raise ValueError(_("a moved message needs the folder it went to"))
    addresses = record["addresses"]
    if not all(isinstance(a, str) and "@" in a for a in addresses):
        raise ValueError(_("'addresses' must be a list of e-mail addresses"))
    values: dict[str, Any] = {**record, "addresses": tuple(addresses)}
    return Entry(**values)


def _record(entry: Entry) -> dict[str, object]:
    record = asdict(entry)
    record["addresses"] = list(entry.addresses)
    return record
