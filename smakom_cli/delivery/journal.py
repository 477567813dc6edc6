"""The send journal: what happened to each recipient of one issue, kept safe across crashes.

One JSON object per line, each closed by a CRC-32 of its own bytes (`"sum"`), so an edited,
joined or damaged line is detected, not guessed at. The first line names the issue; each run
adds a `session` line with the list it sends and the identity of the machine's boot.

For each message the sender writes, in order:
- `in-flight`, before MAIL FROM. It is forced to disk while the message goes out and is
  waited for just before the final "." of DATA, the first moment the server can take it;
  with several connections the waits share one fsync (group commit).
- `ending`, right before that "." (handed to the operating system, no fsync of its own).
- `handed`, as soon as the "." is handed to the operating system (no fsync either; not on
  Windows, which may drop what a killed process had handed over).
- the outcome: `sent`, `failed`, `deferred`, `skipped` or `uncertain` (the connection was
  lost before the answer to the "."), handed to the operating system.

Reading it back: `sent` and `failed` are done; `deferred` and `skipped` are sent by the next
run. An `in-flight` with no outcome was cut off. If the machine has not restarted since (same
boot), the operating system outlived the process and sent on whatever it had been handed:
with no `ending` the "." was never sent, so the server cannot have the message and it is
simply sent again; with `handed` the server has the whole message, which counts as sent (it
is named as handed over: only a server refusing a message at its very end would not have
taken it). Between the two marks, or after a power cut (which may have lost the lines and the
data the system had not yet written), it may have arrived: "uncertain", reported and never
sent again unasked.

This module is the only one that opens `sent/*.jsonl`: the plan, the inbox and the sync ask
it which journals are an issue's, who got which issue and which addresses it knows. The
witness (`audience/witness.py`) remembers what each journal held when its run ended, so a
journal cut short or restored from an older backup is an error, never "fewer already sent".
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from filelock import FileLock

from smakom_cli.atomic import PRIVATE, replace_file
from smakom_cli.audience.witness import JournalRecord, Witness
from smakom_cli.delivery.outcome import Outcome
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _, ngettext
from smakom_cli.locks import holding, take

if TYPE_CHECKING:
    from smakom_cli.compose.issue import Issue

VERSION = 2
# Where the locks of the sends in progress are, in the newsletter folder.
SENDING_FOLDER = Path(".smakom") / "sending"
# Longer than any record smakom writes (replies are cut to _MAX_REPLY): a longer unfinished
# tail cannot be a record torn by a crash.
_MAX_RECORD = 2048
_MAX_REPLY = 500
_SUM = b',"sum":"'
_REPAIR = _(
    "The journal records who already received this issue, so smakom will not send it until "
    "the file is repaired: restore it from a backup; smakom will not guess who got it."
)


class Mark(StrEnum):
    """Journal lines that are not a message's outcome."""

    HEADER = "journal"
    SESSION = "session"
    IN_FLIGHT = "in-flight"
    ENDING = "ending"
    HANDED = "handed"
    COMPLETE = "complete"


_OUTCOMES = frozenset(
    {Outcome.SENT, Outcome.FAILED, Outcome.DEFERRED, Outcome.SKIPPED, Outcome.UNCERTAIN}
)
_KEYED = frozenset({*_OUTCOMES, Mark.IN_FLIGHT, Mark.ENDING, Mark.HANDED})
_EVENTS = frozenset({*_KEYED, Mark.HEADER, Mark.SESSION, Mark.COMPLETE})


@dataclass(frozen=True)
class JournalHeader:
    """Which issue a journal is for: its name and a fingerprint of its subject and text."""

    issue: str
    subject: str
    fingerprint: str


@dataclass(frozen=True)
class Session:
    """One run that sent from this journal: the list it read, when, and on which boot."""

    list_name: str
    started: str
    boot: str


@dataclass(frozen=True)
class JournalState:
    """What a journal says about each recipient; `read` needs no lock (plans, summaries).

    `sent` maps each key to the index in `sessions` of the run that sent it.
    `unfinished` were cut off before the end of DATA on this boot: not taken, to be sent.
    `handed` were cut off after the whole message went to the server on this boot: counted
    in `sent`, named because the server's answer was never read.
    """

    header: JournalHeader | None = None
    sessions: tuple[Session, ...] = ()
    sent: Mapping[str, int] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)
    deferred: Mapping[str, str] = field(default_factory=dict)
    uncertain: frozenset[str] = frozenset()
    unfinished: frozenset[str] = frozenset()
    handed: frozenset[str] = frozenset()
    completed: bool = False

    @property
    def done(self) -> frozenset[str]:
        """Keys that must not be sent again: delivered, or refused for good by the server."""
        return frozenset(self.sent) | frozenset(self.failed)

    def not_to_send(self, *, resend_uncertain: bool = False) -> frozenset[str]:
        """Keys a resumed send leaves out: done ones, and uncertain ones unless asked."""
        return self.done if resend_uncertain else self.done | self.uncertain

    @classmethod
    def read(cls, path: Path, *, boot: str | None = None) -> JournalState:
        """The state of the journal at `path`; an empty state when there is none yet.

        `boot` is this machine's boot identity (default: read from the system).
        """
        try:
            data = _read(path)
        except FileNotFoundError:
            return cls()
        return _parse(path, data)[0].state(boot or current_boot())


@dataclass(frozen=True)
class Ticket:
    """A message marked in flight: the key and the position its record must reach on disk."""

    key: str
    position: int


def current_boot() -> str:
    """This boot of this machine: the same until the machine restarts (or on another machine).

    Linux has a random boot id. Elsewhere the boot time stands for it (psutil: from the
    kernel on macOS, from the uptime on Windows); if that wavers by a second, two runs look
    like two boots, which only makes a cut-off message uncertain instead of resent.
    """
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        import psutil

        return f"{sys.platform}-booted-{psutil.boot_time():.0f}"


class _Tracker:
    """Folds journal records, in order, into the state of each key."""

    def __init__(self) -> None:
        self.header: JournalHeader | None = None
        self.sessions: list[Session] = []
        # key -> (last event, its reply, the session it belongs to)
        self.last: dict[str, tuple[str, str, int]] = {}
        self.sent: dict[str, int] = {}
        self.completed = False

    def apply(self, record: Mapping[str, Any]) -> None:
        event = record["event"]
        session = len(self.sessions) - 1
        if event == Mark.HEADER:
            self.header = JournalHeader(record["issue"], record["subject"], record["fingerprint"])
        elif event == Mark.SESSION:
            self.sessions.append(Session(record["list"], record["time"], record["boot"]))
        elif event == Mark.COMPLETE:
            self.completed = True
        else:
            key = record["key"]
            self.last[key] = (event, record.get("reply", ""), session)
            if event == Outcome.SENT:
                self.sent.setdefault(key, session)

    def state(self, boot: str) -> JournalState:
        # "sent" is final: a later line for the same key cannot make it uncertain again.
        failed: dict[str, str] = {}
        deferred: dict[str, str] = {}
        uncertain: set[str] = set()
        unfinished: set[str] = set()
        sent = dict(self.sent)
        handed: set[str] = set()
        for key, (event, reply, session) in self.last.items():
            if key in self.sent:
                continue
            same_boot = session >= 0 and self.sessions[session].boot == boot
            if event == Outcome.FAILED:
                failed[key] = reply
            elif event == Outcome.DEFERRED:
                deferred[key] = reply
            elif event == Mark.HANDED and same_boot:
                sent[key] = session
                handed.add(key)
            elif event in (Mark.ENDING, Mark.HANDED, Outcome.UNCERTAIN):
                uncertain.add(key)
            elif event == Mark.IN_FLIGHT:
                (unfinished if same_boot else uncertain).add(key)
        return JournalState(
            header=self.header,
            sessions=tuple(self.sessions),
            sent=sent,
            failed=failed,
            deferred=deferred,
            uncertain=frozenset(uncertain),
            unfinished=frozenset(unfinished),
            handed=frozenset(handed),
            completed=self.completed,
        )


def _parse(path: Path, data: bytes) -> tuple[_Tracker, int]:
    """Fold every line; returns the tracker and the length of the intact part of `data`.

    Only what an interrupted append leaves is forgiven: after the last complete line, a
    tail shorter than one record, without a line end, that is the start of a record.
    Anything else (lines joined, a record edited, bytes that are not journal lines) is an
    error naming the line, because guessing could send someone the issue twice.
    """
    tracker = _Tracker()
    lines = data.split(b"\n")
    offset = 0
    for number, line in enumerate(lines, start=1):
        last = number == len(lines)
        if not line.strip():
            offset += len(line) + 1
            continue
        try:
            record = _decode(line)
            _check_order(tracker, record)
        except ValueError as exc:
            if last and number > 1 and _torn(line):
                return tracker, offset
            raise SmakomError(
                _("{path}, line {number}: {exc}. {repair}").format(
                    path=path, number=number, exc=exc, repair=_REPAIR
                )
            ) from None
        tracker.apply(record)
        offset += len(line) + 1
    if tracker.header is None:
        raise SmakomError(
            _("{path} is empty: a journal starts with its header line. {repair}").format(
                path=path, repair=_REPAIR
            )
        )
    return tracker, len(data)


def _torn(tail: bytes) -> bool:
    """Whether an unfinished last line is the start of one record, cut by a crash."""
    if len(tail) >= _MAX_RECORD or not tail.startswith(b'{"'):
        return False
    try:
        json.JSONDecoder().raw_decode(tail.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return exc.end == len(tail)  # only a letter cut in half at the very end
    except ValueError:
        return True  # incomplete: the rest was never written
    return False  # a whole object, with or without more after it: not torn


def _decode(line: bytes) -> dict[str, Any]:
    cut = line.rfind(_SUM)
    if cut < 0 or not line.endswith(b'"}'):
        raise ValueError(_("a journal line without its checksum"))
    expected = line[cut + len(_SUM) : -2]
    if f"{zlib.crc32(line[:cut] + b'}'):08x}".encode() != expected:
        raise ValueError(_("the line was changed or damaged (its checksum does not match)"))
    try:
        record = json.loads(line.decode("utf-8"))
    except ValueError:  # also UnicodeDecodeError
        raise ValueError(_("not a journal line (not JSON, or several lines joined)")) from None
    if not isinstance(record, dict) or record.get("event") not in _EVENTS:
        raise ValueError(_("not a journal record"))
    if record["event"] in _KEYED and not isinstance(record.get("key"), str):
        raise ValueError(_("a record without its recipient"))
    fields = {Mark.HEADER: ("issue", "subject", "fingerprint"), Mark.SESSION: ("list", "boot")}
    for name in ("time", *fields.get(record["event"], ())):
        if not isinstance(record.get(name), str):
            raise ValueError(
                _("a {record} record without its {name}").format(record=record["event"], name=name)
            )
    return record


def _check_order(tracker: _Tracker, record: Mapping[str, Any]) -> None:
    event = record["event"]
    if (tracker.header is None) != (event == Mark.HEADER):
        raise ValueError(_("the journal's first line must be its header, and only it"))
    if event in _KEYED and not tracker.sessions:
        raise ValueError(_("a message recorded before any session"))


def encode(record: Mapping[str, Any]) -> bytes:
    """One journal line: the record as JSON, closed by the CRC-32 of those bytes."""
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return body[:-1] + _SUM + f"{zlib.crc32(body):08x}".encode() + b'"}\n'


def _record(event: str, **values: str) -> dict[str, str]:
    return {"event": event, "time": _local_time(int(time.time())), **values}


@functools.lru_cache(maxsize=4)
def _local_time(second: int) -> str:
    """The local time of a second as text: worked out once, not for each of its records."""
    return datetime.fromtimestamp(second).astimezone().isoformat(timespec="seconds")


def issue_header(issue: Issue) -> JournalHeader:
    """What a journal of this issue says it is for: its name and the fingerprint of its
    subject and text, the same for a renamed copy (spacing ignored)."""
    text = f"{' '.join(issue.subject.split())}\0{' '.join(issue.body.split())}"
    fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return JournalHeader(issue.slug, issue.subject, fingerprint)


@contextmanager
def hold_issue(folder: Path, header: JournalHeader, *, issue_file: Path) -> Iterator[None]:
    """Hold an issue for one send, by its name and by its text, from the plan to the report.

    Whatever the issue file is called, two sends of the same issue (its name, or its subject
    and text under another name) never run at once: the second is refused at once, told
    which run holds it, before it has planned or sent anything. A killed send lets go of
    its locks with its process.
    """
    locks = folder / SENDING_FOLDER
    locks.mkdir(parents=True, exist_ok=True)
    names = (f"issue-{_file_safe(header.issue)}", f"text-{header.fingerprint[:24]}")
    started = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
    computer = platform.node() or "this computer"
    run = f"{issue_file}, process {os.getpid()} on {computer}, since {started}"
    with ExitStack() as held:
        notes = []
        for name in names:
            note = locks / f"{name}.txt"
            held.enter_context(
                holding(locks / f"{name}.lock", timeout=0, busy=functools.partial(_busy, note))
            )
            held.callback(note.unlink, missing_ok=True)
            notes.append(note)
        for note in notes:
            note.write_text(run + "\n", encoding="utf-8")
        yield


def _busy(note: Path) -> str:
    holder = ""
    # The holder writes its note just after taking the lock: give it that moment.
    for _attempt in range(20):
        try:
            holder = note.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            holder = ""
        if holder:
            break
        time.sleep(0.01)
    who = f" ({holder})" if holder else ""
    return _(
        "Another smakom is sending this issue right now{who}, perhaps under another file "
        "name. Nothing was sent; wait for it to finish, then run the command again."
    ).format(who=who)


def _file_safe(name: str) -> str:
    """A name usable as a file name everywhere; anything odd in it makes it a digest."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", name):
        return name
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]


def archive_journal(path: Path) -> Path:
    """Move a journal aside under a name with the date and time (never deleted); the new name."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.stem}.until-{stamp}{path.suffix}")
    number = 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}.until-{stamp}-{number}{path.suffix}")
    path.rename(candidate)
    return candidate


def is_archived(path: Path) -> bool:
    """A journal moved aside by `send --again`: history, no longer counted."""
    return ".until-" in path.name


def protected(state: JournalState) -> frozenset[str]:
    """Who must not get the issue again unasked: sent, refused for good, or uncertain."""
    return state.done | state.uncertain


def issue_journals(
    folder: Path, header: JournalHeader, *, boot: str | None = None
) -> list[tuple[Path, JournalState]]:
    """Every live journal of this issue, by its name or by the fingerprint of its text.

    Each is checked against the witness: a journal that holds fewer recipients than it did
    when its last run ended (cut short, restored from an older backup, deleted) is an error
    naming how many are missing, never "fewer already sent".
    """
    boot = boot or current_boot()
    found: list[tuple[Path, JournalState]] = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.jsonl")):
            if is_archived(path):
                continue
            if path.name != f"{header.issue}.jsonl" and not _starts_like_a_journal(path):
                continue
            state = JournalState.read(path, boot=boot)
            if state.header is not None and _same_issue(state.header, header):
                found.append((path, state))
    _check_witness(folder, header, found)
    return found


def journal_for(
    folder: Path, header: JournalHeader, journals: list[tuple[Path, JournalState]], *, again: bool
) -> Path:
    """The journal a send of this issue writes: its own, else a renamed copy's; a new one for
    --again or a first send."""
    if not again:
        for path, state in journals:
            if state.header is not None and state.header.issue == header.issue:
                return path
        if journals:
            return journals[0][0]
    return folder / f"{header.issue}.jsonl"


def witness_journals(folder: Path, paths: Iterable[Path], *, boot: str | None = None) -> None:
    """Tell the witness what these journals hold; only once their run has closed them (on disk).

    The witness never learns more than the disk holds, so it lags the journal, never leads
    it; a witness made for the first time takes in every live journal in `folder`.
    """
    witness = Witness(folder.parent)
    with witness.updating() as draft:
        if draft.journals is None:
            draft.journals = {}
            paths = [p for p in sorted(folder.glob("*.jsonl")) if not is_archived(p)]
        for path in paths:
            if not path.exists():
                continue
            state = JournalState.read(path, boot=boot or current_boot())
            if state.header is None:
                continue
            keys = protected(state)
            known = draft.journals.get(path.name)
            if known is None or len(keys) >= known.count:
                draft.journals[path.name] = JournalRecord(
                    state.header.issue, state.header.fingerprint, len(keys), witness.digest(keys)
                )


def forget_journals(folder: Path, paths: Iterable[Path]) -> None:
    """Before journals are moved aside (`send --again`): the witness lets go of them first."""
    with Witness(folder.parent).updating() as draft:
        if draft.journals is not None:
            for path in paths:
                draft.journals.pop(path.name, None)


def any_journal(folder: Path) -> bool:
    """Whether any issue has a journal in `folder` (one has gone out, or begun to)."""
    return folder.is_dir() and any(folder.glob("*.jsonl"))


def sent_by_issue(folder: Path) -> dict[str, frozenset[str]]:
    """Who was sent which issue, by the issue each journal names (moved-aside ones too)."""
    sent: dict[str, frozenset[str]] = {}
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else ():
        state = JournalState.read(path)
        if state.header is not None:
            issue = state.header.issue
            sent[issue] = sent.get(issue, frozenset()) | frozenset(state.sent)
    return sent


def known_keys(folder: Path) -> Iterator[str]:
    """Every recipient any journal in `folder` names (moved-aside ones too), in any state."""
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else ():
        yield from _parse(path, _read(path))[0].last


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SmakomError(
            _("{path} cannot be read ({why}).").format(path=path, why=exc.strerror or exc)
        ) from None


def _same_issue(found: JournalHeader, wanted: JournalHeader) -> bool:
    return found.issue == wanted.issue or found.fingerprint == wanted.fingerprint


def _starts_like_a_journal(path: Path) -> bool:
    """A cheap look at the first bytes, so only journals are read whole."""
    with path.open("rb") as file:
        return file.read(18) == b'{"event":"journal"'


def _check_witness(
    folder: Path, header: JournalHeader, journals: list[tuple[Path, JournalState]]
) -> None:
    witness = Witness(folder.parent)
    recorded = witness.read().journals or {}
    states = {path.name: state for path, state in journals}
    for name, record in sorted(recorded.items()):
        if not _same_issue(JournalHeader(record.issue, "", record.fingerprint), header):
            continue
        path = folder / name
        state = states.get(name)
        if state is None and path.exists():
            JournalState.read(path)  # emptied or damaged at its start: say so, with the line
        if state is None:
            raise SmakomError(
                ngettext(
                    "{path} is missing, but it recorded {count} recipient who got issue "
                    "'{issue}' or may have (smakom's witness, {witness}, remembers). Restore it "
                    "from a backup (to send the issue to everyone again on purpose, restore it "
                    "and use `smakom send --again`); smakom will not send this issue until then.",
                    "{path} is missing, but it recorded {count} recipients who got issue "
                    "'{issue}' or may have (smakom's witness, {witness}, remembers). Restore it "
                    "from a backup (to send the issue to everyone again on purpose, restore it "
                    "and use `smakom send --again`); smakom will not send this issue until then.",
                    record.count,
                ).format(path=path, count=record.count, issue=record.issue, witness=witness.path)
            )
        keys = protected(state)
        if len(keys) < record.count:
            problem = ngettext(
                "it names {count} recipient who got this issue or may have, but it "
                "named {recorded} when its last send ended: {missing} missing",
                "it names {count} recipients who got this issue or may have, but it "
                "named {recorded} when its last send ended: {missing} missing",
                len(keys),
            ).format(count=len(keys), recorded=record.count, missing=record.count - len(keys))
        elif len(keys) == record.count and witness.digest(keys) != record.digest:
            problem = _(
                "it names as many recipients as when its last send ended, but not the same ones"
            )
        else:
            continue
        raise SmakomError(
            _(
                "{path}: {problem} (smakom's witness, {witness}, remembers). Was it restored "
                "from an older backup, or cut short by a copy or a sync? Restore the whole "
                "journal from a backup; smakom will not send this issue until then."
            ).format(path=path, problem=problem, witness=witness.path)
        )


def _create(path: Path, header: JournalHeader) -> None:
    """A new journal holding its header, put in place whole (a crash leaves none or this)."""
    line = encode(
        _record(
            Mark.HEADER, issue=header.issue, subject=header.subject, fingerprint=header.fingerprint
        )
        | {"version": str(VERSION)}
    )
    replace_file(path, line, new_mode=PRIVATE)


def _write_all(file: IO[bytes], data: bytes) -> None:
    """An unbuffered write may take only part of the data; write the rest."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        view = view[written or 0 :]


class _Committer(threading.Thread):
    """Forces the journal to disk for whoever waits, one fsync for all waiting at once."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(name="smakom-journal", daemon=True)
        self._file = file
        self._changed = threading.Condition()
        self.written = 0  # bytes handed to the operating system
        self._wanted = 0
        self._durable = 0
        self._closing = False
        self._error: OSError | None = None

    def want(self, position: int) -> None:
        with self._changed:
            self._wanted = max(self._wanted, position)
            self._changed.notify_all()

    def wait(self, position: int) -> None:
        with self._changed:
            self._wanted = max(self._wanted, position)
            self._changed.notify_all()
            while self._durable < position:
                if self._error is not None:
                    raise self._error
                self._changed.wait()

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self.join()

    def run(self) -> None:
        while True:
            with self._changed:
                while self._wanted <= self._durable and not self._closing:
                    self._changed.wait()
                if self._wanted <= self._durable:
                    return
                target = self.written
            try:
                os.fsync(self._file.fileno())
            except OSError as error:
                with self._changed:
                    self._error = error
                    self._changed.notify_all()
                return
            with self._changed:
                self._durable = max(self._durable, target)
                self._changed.notify_all()


class Journal:
    """The open, locked journal of one issue; safe to write from several threads."""

    def __init__(
        self, path: Path, lock: FileLock, file: IO[bytes], tracker: _Tracker, boot: str
    ) -> None:
        self.path = path
        self._lock = lock
        self._file = file
        self._tracker = tracker
        self._boot = boot
        self._write_lock = threading.Lock()
        self._refused: SmakomError | None = None  # the disk refused a line: no more are written
        self._committer = _Committer(file)
        self._committer.written = file.tell()
        self._committer.start()

    @classmethod
    def open(
        cls, path: Path, header: JournalHeader, *, list_name: str, boot: str | None = None
    ) -> Journal:
        """Lock the journal at `path` (creating it with `header`) and start a session in it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = take(
            path.with_name(path.name + ".lock"),
            timeout=0,
            busy=lambda: _(
                "Another smakom is sending this issue right now ({path} is in use). "
                "Wait for it to finish, then run the command again."
            ).format(path=path),
        )
        try:
            if not path.exists():
                _create(path, header)
            data = path.read_bytes()
            tracker, intact = _parse(path, data)
            # Unbuffered: a line the disk refuses is refused at once, with nothing left
            # in a buffer to fail again when the journal is closed.
            file = path.open("r+b", buffering=0)
        except BaseException:
            lock.release()
            raise
        try:
            file.truncate(intact)  # a record torn by a crash
            file.seek(0, os.SEEK_END)
            if not data[:intact].endswith(b"\n"):
                file.write(b"\n")  # the last record was whole but its line end was lost
            journal = cls(path, lock, file, tracker, boot or current_boot())
        except BaseException:
            file.close()
            lock.release()
            raise
        journal._append(_record(Mark.SESSION, list=list_name, boot=journal._boot), durable=True)
        return journal

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
        """Force everything to disk, close the file and let another send of this issue start.

        After the disk refused a line the send has already stopped and says why; what was
        written before is forced to disk as far as it goes, and closing does not fail again.
        """
        try:
            self._committer.close()
            with self._write_lock:
                try:
                    os.fsync(self._file.fileno())
                except OSError:
                    if self._refused is None:
                        raise
        finally:
            self._file.close()
            self._lock.release()

    @property
    def state(self) -> JournalState:
        with self._write_lock:
            return self._tracker.state(self._boot)

    @property
    def done(self) -> frozenset[str]:
        return self.state.done

    @property
    def uncertain(self) -> frozenset[str]:
        return self.state.uncertain

    def mark_in_flight(self, key: str) -> Ticket:
        """Written before MAIL FROM; forced to disk while the message goes out."""
        position = self._append(_record(Mark.IN_FLIGHT, key=key))
        self._committer.want(position)
        return Ticket(key, position)

    def mark_ending(self, ticket: Ticket) -> None:
        """Right before the final "." of DATA: the in-flight record is on disk, then this."""
        self._committer.wait(ticket.position)
        self._append(_record(Mark.ENDING, key=ticket.key))

    def mark_handed(self, ticket: Ticket) -> None:
        """Right after the final "." went to the operating system, before the answer."""
        self._append(_record(Mark.HANDED, key=ticket.key))

    def record(self, outcome: Outcome, key: str, reply: str = "") -> None:
        """A message's outcome, with the server's reply for a refusal."""
        if outcome not in _OUTCOMES:
            raise ValueError(f"{outcome} is not journalled")
        values = {"key": key} | ({"reply": reply[:_MAX_REPLY]} if reply else {})
        self._append(_record(outcome, **values))

    def mark_complete(self) -> None:
        """Every message of the issue has gone out."""
        self._append(_record(Mark.COMPLETE), durable=True)

    def _append(self, record: dict[str, str], *, durable: bool = False) -> int:
        """Hand one line to the operating system; its end position in the file."""
        line = encode(record)
        with self._write_lock:
            if self._refused is not None:
                raise self._refused
            try:
                _write_all(self._file, line)
            except OSError as error:
                self._refused = SmakomError(
                    _(
                        "the journal {path} could not be written ({value}); make room on the "
                        "disk, so that what went out can be recorded before more is sent."
                    ).format(path=self.path, value=error.strerror or error)
                )
                raise self._refused from error
            self._committer.written += len(line)
            position = self._committer.written
            self._tracker.apply(record)
        if durable:
            self._committer.wait(position)
        return position
