"""`inbox.jsonl`: every message `smakom inbox` has sorted, and what it made of it.

One JSON object a line, beside `unsubscribed.csv`. It is how a second run does nothing twice
(by folder, UIDVALIDITY and UID, and by Message-ID), how a move cut off by a dropped
connection is finished on the next run, and where soft bounces are counted per issue. A
line is written before the message is moved, and after any unsubscribe it causes, so a run
stopped anywhere leaves nothing half-recorded.

A person may edit the file (remove a soft bounce to reset its count, say), so it is read
strictly: a damaged line is an error naming it, never skipped. Writers hold a lock and
replace the file atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from filelock import FileLock, Timeout

from smakom_cli.atomic import PRIVATE, replace_file
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.returns.bounces import Kind

Action = Literal["move", "leave"]
KINDS: frozenset[str] = frozenset(get_args(Kind))
ACTIONS: frozenset[str] = frozenset(("move", "leave"))
LOCK_TIMEOUT = 30.0
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


@dataclass(frozen=True)
class InboxLog:
    """The entries of `inbox.jsonl`, in order."""

    path: Path
    entries: tuple[Entry, ...]

    @classmethod
    def read(cls, path: Path) -> InboxLog:
        """The log at `path`; empty when there is none yet; an error naming a damaged line."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls(path, ())
        except OSError as exc:
            raise SmakomError(
                _("{path} cannot be read ({value}).").format(path=path, value=exc.strerror or exc)
            ) from None
        return cls(path, tuple(parse(data, path.name)))

    def seen(self, folder: str, uidvalidity: int) -> dict[int, Entry]:
        """The entries of one folder's current UIDs, by UID."""
        return {
            e.uid: e for e in self.entries if e.folder == folder and e.uidvalidity == uidvalidity
        }

    def by_message_id(self) -> dict[str, Entry]:
        return {e.message_id: e for e in self.entries if e.message_id}

    def soft_issues(self, key: str) -> frozenset[str]:
        """The issues on which this address bounced softly."""
        return frozenset(
            e.issue for e in self.entries if e.kind == "soft" and e.issue and key in e.addresses
        )

    def append(self, entry: Entry) -> InboxLog:
        """Add one entry on disk (locked, atomic) and return the log with it."""
        lock = FileLock(self.path.with_name(self.path.name + ".lock"))
        try:
            with lock.acquire(timeout=LOCK_TIMEOUT):
                old = self.path.read_bytes() if self.path.exists() else b""
                # Another run may have added lines since this one read the file.
                current = parse(old, self.path.name)
                if old and not old.endswith(b"\n"):
                    old += b"\n"
                line = json.dumps(_record(entry), ensure_ascii=False) + "\n"
                self.path.parent.mkdir(parents=True, exist_ok=True)
                replace_file(self.path, old + line.encode("utf-8"), new_mode=PRIVATE)
        except Timeout:
            raise SmakomError(
                _(
                    "{name} stayed locked by another smakom inbox for {lock_timeout:.0f} "
                    "seconds. Wait for it to finish and try again."
                ).format(name=self.path.name, lock_timeout=LOCK_TIMEOUT)
            ) from None
        return InboxLog(self.path, (*current, entry))


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


def _entry(record: object) -> Entry:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    unknown = set(record) - set(_FIELDS)
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
