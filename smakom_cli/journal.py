"""The send journal: what happened to each recipient of one issue, kept safe across crashes.

One JSON object per line. Before a message is handed to the server an `in-flight` line is
written and forced to disk; its outcome (`sent`, `failed`, `deferred`, `skipped`) follows,
handed to the operating system at once (so it survives a crash of smakom) and forced to disk
with the next `in-flight` line or on closing. A power cut can thus lose an outcome line, which
leaves that message uncertain, never sent twice; and the send pays one fsync per message.
After Ctrl-C, a crash or a power cut, the journal tells a resumed send who
already has the issue (never send twice) and whose message may or may not have arrived
(`in-flight` with no outcome: "uncertain", reported and not re-sent unless asked).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from filelock import FileLock, Timeout

from smakom_cli.errors import SmakomError

Event = Literal["in-flight", "sent", "failed", "deferred", "skipped", "complete"]
_EVENTS: frozenset[str] = frozenset(
    ("in-flight", "sent", "failed", "deferred", "skipped", "complete")
)


@dataclass(frozen=True)
class JournalState:
    """What a journal says about each recipient; `read` needs no lock (preview, summaries)."""

    sent: frozenset[str] = frozenset()
    failed: Mapping[str, str] = field(default_factory=dict)
    uncertain: frozenset[str] = frozenset()
    completed: bool = False

    @property
    def done(self) -> frozenset[str]:
        """Keys that must not be sent again: delivered, or refused for good by the server."""
        return self.sent | frozenset(self.failed)

    def not_to_send(self, *, resend_uncertain: bool = False) -> frozenset[str]:
        """Keys a resumed send leaves out: done ones, and uncertain ones unless asked."""
        return self.done if resend_uncertain else self.done | self.uncertain

    @classmethod
    def read(cls, path: Path) -> JournalState:
        """The state of the journal at `path`; an empty state when there is none yet."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls()
        return _Tracker.parse(path, data)[0].state()


class _Tracker:
    """Folds journal records, in order, into the state of each key."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[str, str]] = {}
        self.sent: set[str] = set()
        self.completed = False

    def apply(self, record: Mapping[str, Any]) -> None:
        event = record["event"]
        if event == "complete":
            self.completed = True
            return
        self.last[record["key"]] = (event, record.get("reply", ""))
        if event == "sent":
            self.sent.add(record["key"])

    def state(self) -> JournalState:
        # "sent" is final: a later line for the same key cannot make it uncertain again.
        return JournalState(
            sent=frozenset(self.sent),
            failed={
                k: reply
                for k, (event, reply) in self.last.items()
                if event == "failed" and k not in self.sent
            },
            uncertain=frozenset(k for k, (event, _) in self.last.items() if event == "in-flight")
            - self.sent,
            completed=self.completed,
        )

    @classmethod
    def parse(cls, path: Path, data: bytes) -> tuple[_Tracker, int]:
        """Fold every line; returns the tracker and the length of the intact part of `data`.

        A damaged last line is what a crash in the middle of a write leaves: it is ignored
        (the caller cuts it off before appending). A damaged line anywhere else means the
        file was edited or corrupted, and guessing could send someone the issue twice.
        """
        tracker = cls()
        lines = data.split(b"\n")
        offset = 0
        for number, line in enumerate(lines, start=1):
            end = offset + len(line) + 1
            if line.strip():
                try:
                    record = _decode(line)
                except ValueError as exc:
                    if not any(rest.strip() for rest in lines[number:]):
                        return tracker, offset
                    raise SmakomError(
                        f"{path}, line {number}: damaged journal entry ({exc}). The journal "
                        "records who already received this issue; fix or remove that line."
                    ) from None
                tracker.apply(record)
            offset = end
        return tracker, len(data)


def _decode(line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line.decode("utf-8"))
    except ValueError:  # also UnicodeDecodeError
        raise ValueError("not JSON") from None
    if not isinstance(record, dict) or record.get("event") not in _EVENTS:
        raise ValueError("not a journal record")
    if record["event"] != "complete" and not isinstance(record.get("key"), str):
        raise ValueError("no recipient key")
    return record


def _archive_name(path: Path) -> Path:
    """A name beside `path`, with the date and time, that no earlier journal has."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.stem}.until-{stamp}{path.suffix}")
    number = 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}.until-{stamp}-{number}{path.suffix}")
    return candidate


def _open_for_append(path: Path) -> tuple[IO[bytes], _Tracker]:
    """Read the journal, cut off a torn last line, and open it for appending."""
    data = path.read_bytes() if path.exists() else b""
    tracker, intact = _Tracker.parse(path, data)
    file = path.open("ab")
    try:
        if intact < len(data):
            file.truncate(intact)
        if intact and not data[:intact].endswith(b"\n"):
            file.write(b"\n")  # the last record was whole but its line end was lost
    except BaseException:
        file.close()
        raise
    return file, tracker


class Journal:
    """The open, locked journal of one issue and list; safe to write from several threads."""

    def __init__(self, path: Path, lock: FileLock, file: IO[bytes], tracker: _Tracker) -> None:
        self.path = path
        self._lock = lock
        self._file = file
        self._tracker = tracker
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, *, fresh: bool = False) -> Journal:
        """Lock and read the journal at `path`, creating it if needed.

        `fresh` starts an empty journal (to send the issue again to everyone); the old one is
        kept beside it under a name with the date and time, never deleted.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path.with_name(path.name + ".lock"), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise SmakomError(
                f"Another smakom is sending this issue right now ({path} is in use). "
                "Wait for it to finish, then run the command again."
            ) from None
        try:
            if fresh and path.exists():
                path.rename(_archive_name(path))
            file, tracker = _open_for_append(path)
        except BaseException:
            lock.release()
            raise
        return cls(path, lock, file, tracker)

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file and let another send of this issue start."""
        with self._write_lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        self._lock.release()

    @property
    def state(self) -> JournalState:
        with self._write_lock:
            return self._tracker.state()

    @property
    def done(self) -> frozenset[str]:
        return self.state.done

    @property
    def uncertain(self) -> frozenset[str]:
        return self.state.uncertain

    @property
    def completed(self) -> bool:
        return self.state.completed

    def mark_in_flight(self, key: str) -> None:
        """Written, and on disk, before the message is handed to the server."""
        self._append("in-flight", key, durable=True)

    def record_sent(self, key: str) -> None:
        self._append("sent", key)

    def record_failed(self, key: str, reply: str) -> None:
        """The server refused the message for good (or retries ran out), with its reply."""
        self._append("failed", key, reply)

    def record_deferred(self, key: str, reply: str) -> None:
        """The server did not take the message this time; it is to be tried again."""
        self._append("deferred", key, reply)

    def record_skipped(self, key: str) -> None:
        """Not sent: the address was unsubscribed while the send was running."""
        self._append("skipped", key)

    def mark_complete(self) -> None:
        """Every message of the issue has gone out."""
        self._append("complete", durable=True)

    def _append(
        self,
        event: Event,
        key: str | None = None,
        reply: str | None = None,
        *,
        durable: bool = False,
    ) -> None:
        record: dict[str, str] = {
            "time": datetime.now().astimezone().isoformat(timespec="seconds"),
            "event": event,
        }
        if key is not None:
            record["key"] = key
        if reply is not None:
            record["reply"] = reply
        line = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
        with self._write_lock:
            self._file.write(line)
            self._file.flush()
            if durable:
                os.fsync(self._file.fileno())
            self._tracker.apply(record)
