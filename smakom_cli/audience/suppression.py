"""The suppression list: who asked not to get the newsletter, kept in `unsubscribed.csv`.

The file belongs to the tool and is separate from the subscriber list, so replacing
subscribers.csv with a fresh export cannot mail anyone who opted out. It is a log of events
(one row each); an address is suppressed when its latest event is `unsubscribed`. "Latest" is
by the `when` column, not by the row's place: a file sorted by address or date in a
spreadsheet means the same as before, and an unsubscribe wins a tie.

Writers hold a lock file, replace the file atomically and read it back before letting go of
the lock, so concurrent commands lose nothing, a crash leaves the old or the new file, and
success is only reported for what the file really says. Readers take no lock.

The file is read strictly, one record a line: the tool never writes a line break inside a
value, so a quote mark that is not closed on its own line is damage (an unclosed quote would
otherwise swallow every row after it). A damaged file is an error, never a shorter list:
reading it as shorter would mail people who opted out.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smakom_cli.atomic import remove_temporary_files, replace_file
from smakom_cli.audience.subscribers import detect_encoding, parse_address
from smakom_cli.audience.witness import Witness
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _, ngettext
from smakom_cli.locks import WAIT_SECONDS, holding, stayed_locked

HEADER = ("email", "action", "when", "source", "reason")
UNSUBSCRIBED = "unsubscribed"
RESUBSCRIBED = "resubscribed"
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_BOM = b"\xef\xbb\xbf"
# The line breaks csv and every editor agree on; in UTF-8 these bytes never occur inside a
# multi-byte character, so the file can be cut into lines before it is decoded.
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
# Characters that would start a new line in some program (or hide in a cell): a written cell
# gets a space instead, so the file stays one record a line.
_FLATTEN = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_CHECK_HINT = _("`smakom unsubscribed --check` lists every damaged line and how to repair it.")


@dataclass(frozen=True)
class Change:
    """What one address's unsubscribe or resubscribe did; `already` means nothing changed."""

    email: str
    action: str
    already: bool


@dataclass(frozen=True)
class Entry:
    """An address that must not be mailed: its latest event, as written in the file."""

    email: str
    since: str
    source: str
    reason: str
    line: int


@dataclass(frozen=True)
class Damage:
    """One damaged line (0: the whole file): what is wrong and how to repair it."""

    line: int
    problem: str
    repair: str


@dataclass(frozen=True)
class Reading:
    """The whole file read: who is suppressed (in file order), every damaged line, and notes
    on lines that are sound but worth knowing about (out of time order)."""

    path: Path
    entries: tuple[Entry, ...]
    damage: tuple[Damage, ...]
    notes: tuple[Damage, ...] = ()


def protect(cell: str) -> str:
    """Make a cell safe to open in a spreadsheet by prefixing `'` (undone by `unprotect`)."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def unprotect(cell: str) -> str:
    """Undo `protect`: every written cell that starts with `'` got exactly one added."""
    return cell.removeprefix("'")


def flatten(cell: str) -> str:
    """A cell on one line: line breaks and other control characters become one space."""
    return _FLATTEN.sub(" ", cell)


class SuppressionList:
    """The unsubscribed addresses in one file; safe to share between a send's threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._witness = Witness(path.parent)
        self._cache_lock = threading.Lock()
        self._signature: tuple[object, object] | None = None
        self._suppressed: frozenset[str] = frozenset()

    def suppressed(self) -> frozenset[str]:
        """The keys whose latest event is `unsubscribed`, re-read only when the file changed.

        A file that no longer suppresses someone its witness knows left is an error.
        """
        with self._cache_lock:
            signature = (_signature(self.path), _signature(self._witness.path))
            if signature != self._signature:
                suppressed = frozenset(self._latest(self._read_bytes()).suppressed())
                gap = self._gap(suppressed)
                if gap is not None:
                    raise _error(self.path.name, gap)
                self._suppressed = suppressed
                self._signature = signature
            return self._suppressed

    def witness(self) -> None:
        """Make the witness of the list from the file as it is, if there is none yet."""
        with self._witness.updating() as draft:
            if draft.unsubscribed is None:
                suppressed = self._latest(self._read_bytes()).suppressed()
                draft.unsubscribed = set(self._witness.hashes(suppressed))

    def _gap(self, suppressed: frozenset[str]) -> Damage | None:
        """Who the witness knows left but the file no longer suppresses, as damage; or None."""
        known = self._witness.read().unsubscribed
        if not known:
            return None
        missing = len(known - self._witness.hashes(suppressed))
        if not missing:
            return None
        problem = ngettext(
            "the file no longer suppresses {count} person who had unsubscribed (smakom's "
            "witness, {witness}, remembers that they left, not who they are)",
            "the file no longer suppresses {count} people who had unsubscribed (smakom's "
            "witness, {witness}, remembers that they left, not who they are)",
            missing,
        ).format(count=missing, witness=self._witness.path)
        repair = _(
            "Restore {file} from a backup that has them; for someone who really came back, "
            "`smakom resubscribe ADDRESS` records it."
        ).format(file=self.path.name)
        return Damage(0, problem, repair)

    def is_suppressed(self, key: str) -> bool:
        """True when this address (lowercase key) must not be mailed; cheap to call per message."""
        return key in self.suppressed()

    def read(self) -> Reading:
        """Every suppressed address with its latest event, and every damaged line.

        Damage is reported, not raised, so `smakom unsubscribed --check` can explain it all.
        """
        data = self._read_bytes()
        events = _Events(self.path.name)
        damage = events.read(data) if data is not None else []
        if not damage:
            gap = self._gap(frozenset(events.suppressed()))
            damage += [gap] if gap else []
        return Reading(self.path, events.entries(), tuple(damage), tuple(events.notes))

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
        follows_ties: bool = False,
    ) -> list[Change]:
        """Record that these addresses opted back in.

        `follows_ties`: the event is known to come after any event of the address recorded
        at the same moment (the one-click service numbers its events, but its times are
        whole seconds), so it is recorded a millisecond after such an event, not lost to it.
        """
        return self._record(addresses, RESUBSCRIBED, source, reason, when, follows_ties)

    def _record(
        self,
        addresses: Sequence[str],
        action: str,
        source: str,
        reason: str,
        when: datetime | None,
        follows_ties: bool = False,
    ) -> list[Change]:
        keys = [parse_address(address).key for address in addresses]
        with holding(self._lock_path, timeout=WAIT_SECONDS, busy=stayed_locked(self.path)):
            return self._record_locked(keys, action, source, reason, when, follows_ties)

    def _record_locked(
        self,
        keys: list[str],
        action: str,
        source: str,
        reason: str,
        when: datetime | None,
        follows_ties: bool,
    ) -> list[Change]:
        """Read, change, replace and read back the file; only called while holding the lock.

        An event with its own time (a click on the web, a bounce) that is older than the
        address's latest changes nothing: time decides. One asked for now (a command) takes
        effect, stamped after the latest event should the file hold one from the future.
        """
        remove_temporary_files(self.path)
        data = self._read_bytes()
        before = self._latest(data)
        changes: list[Change] = []
        new_rows: list[tuple[str, ...]] = []
        planned = before.copy()
        for key in keys:
            moment = when.astimezone(UTC) if when else datetime.now(UTC).replace(microsecond=0)
            latest = planned.moment(key)
            if when is None and latest is not None and latest >= moment:
                moment = latest + timedelta(seconds=1)
            elif follows_ties and latest == moment:
                moment = latest + timedelta(milliseconds=1)
            was_suppressed = planned.action(key) == UNSUBSCRIBED
            planned.add(key, action, moment)
            already = (planned.action(key) == UNSUBSCRIBED) == was_suppressed
            if not already:
                stamp = _stamp(moment)
                new_rows.append((key, action, stamp, source, reason))
            changes.append(Change(email=key, action=action, already=already))
        if action == RESUBSCRIBED:
            # The witness lets go first, so that it lags the file, never leads it. Every
            # address given is let go, written or not: that is how a hand-edited or lost
            # line of someone who really came back is accepted.
            with self._witness.updating() as draft:
                if draft.unsubscribed is None:
                    draft.unsubscribed = set(self._witness.hashes(before.suppressed()))
                draft.unsubscribed -= self._witness.hashes(keys)
        if new_rows:
            replace_file(self.path, _append(data, new_rows))
            self._verify(keys, action)
        if action == UNSUBSCRIBED:
            with self._witness.updating() as draft:
                after = self._latest(self._read_bytes()).suppressed()
                if draft.unsubscribed is None:
                    draft.unsubscribed = set()
                draft.unsubscribed |= self._witness.hashes(after)
        return changes

    def _verify(self, keys: list[str], action: str) -> None:
        """Read the file back: success is only what it shows."""
        try:
            after = self._latest(self._read_bytes())
        except SmakomError as exc:
            raise SmakomError(
                _("{name} was written but does not read back: {exc}").format(
                    name=self.path.name, exc=exc
                )
            ) from None
        missing = sorted({key for key in keys if after.action(key) != action})
        if missing:
            if action == UNSUBSCRIBED:
                sentence = _(
                    "{name} was written, but reading it back does not show {addresses} as "
                    "unsubscribed; run the command again. {check_hint}"
                )
            else:
                sentence = _(
                    "{name} was written, but reading it back does not show {addresses} as "
                    "resubscribed; run the command again. {check_hint}"
                )
            raise SmakomError(
                sentence.format(
                    name=self.path.name, addresses=", ".join(missing), check_hint=_CHECK_HINT
                )
            )

    def latest_times(self) -> dict[str, datetime]:
        """When each address's latest event happened (UTC); for ordering events from afar."""
        return self._latest(self._read_bytes()).times()

    def _latest(self, data: bytes | None) -> _Events:
        """The events of the file; any damage is an error naming its line."""
        events = _Events(self.path.name)
        if data is not None:
            damage = events.read(data)
            if damage:
                raise _error(self.path.name, damage[0])
        return events

    def _read_bytes(self) -> bytes | None:
        """The whole file, or None when nobody has unsubscribed yet (it does not exist)."""
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SmakomError(
                _("{path} cannot be read ({value}).").format(
                    path=self.path, value=exc.strerror or exc
                )
            ) from None


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
                    raise SmakomError(
                        _("{name} line {number}: {exc}.").format(
                            name=path.name, number=number, exc=exc
                        )
                    ) from None
                addresses.append(text)
    except FileNotFoundError:
        raise SmakomError(_("{path} does not exist.").format(path=path)) from None
    except OSError as exc:
        raise SmakomError(
            _("{path} cannot be read ({value}).").format(path=path, value=exc.strerror or exc)
        ) from None
    return addresses


def _error(name: str, damage: Damage) -> SmakomError:
    where = f"{name} line {damage.line}" if damage.line else name
    return SmakomError(
        _(
            "{where}: {problem}. {repair} Nothing is sent to the list or changed "
            "in {name} until it is fixed; {check_hint}"
        ).format(
            where=where,
            problem=damage.problem,
            repair=damage.repair,
            name=name,
            check_hint=_CHECK_HINT,
        )
    )


_FIX = _("Fix or remove that line, or restore the file from a backup.")
_QUOTE_FIX = _(
    "Remove the stray quote mark or close the value with another one on "
    'the same line (a quote mark inside a value is written twice: ""), or '
    "restore the file from a backup."
)


class _Events:
    """The file's rows folded into the latest event per address, collecting damage.

    The latest is the event with the latest `when`; an unsubscribe wins a tie, so a doubt
    about the order of two events never mails someone who may have left.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._latest: dict[str, tuple[datetime, str, Entry | None]] = {}
        self.notes: list[Damage] = []
        self._previous: tuple[datetime, int] | None = None

    def copy(self) -> _Events:
        events = _Events(self.name)
        events._latest = dict(self._latest)
        return events

    def action(self, key: str) -> str | None:
        latest = self._latest.get(key)
        return latest[1] if latest else None

    def moment(self, key: str) -> datetime | None:
        latest = self._latest.get(key)
        return latest[0] if latest else None

    def add(self, key: str, action: str, moment: datetime, entry: Entry | None = None) -> None:
        """Fold one event in: it wins if it is later, or as late and an unsubscribe."""
        latest = self._latest.get(key)
        if latest is None or moment > latest[0] or (moment == latest[0] and action == UNSUBSCRIBED):
            self._latest[key] = (moment, action, entry)

    def suppressed(self) -> Iterator[str]:
        return (key for key, (_, action, _) in self._latest.items() if action == UNSUBSCRIBED)

    def times(self) -> dict[str, datetime]:
        """When each address's latest event happened, in UTC."""
        return {key: moment for key, (moment, _, _) in self._latest.items()}

    def entries(self) -> tuple[Entry, ...]:
        found = (
            entry
            for _, action, entry in self._latest.values()
            if action == UNSUBSCRIBED and entry is not None
        )
        return tuple(sorted(found, key=lambda e: e.line))

    def read(self, data: bytes) -> list[Damage]:
        """Fold every line of `data` in; the damaged lines, in file order."""
        lines = _LINE_BREAK.split(data.removeprefix(_BOM))
        if b"\0" in data:
            # Saved as "Unicode" (UTF-16): every line would be damaged, and nobody found.
            return [
                Damage(
                    0,
                    _("the file has NUL bytes: it was saved as 'Unicode' or UTF-16, not as UTF-8"),
                    _("Save it as 'CSV UTF-8', or restore the file from a backup."),
                )
            ]
        damage: list[Damage] = []
        header_seen = False
        for number, raw in enumerate(lines, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                damage.append(
                    Damage(
                        number,
                        _("the line is not UTF-8 text (was the file saved from a spreadsheet?)"),
                        _(
                            "Save it as 'CSV UTF-8', fix that line, or restore the file from a "
                            "backup."
                        ),
                    )
                )
                header_seen = True
                continue
            if not text.strip():
                continue
            problem = self._line(number, text, header=not header_seen)
            header_seen = True
            if problem is not None:
                damage.append(problem)
        if not header_seen:
            # Also a file of characters that are all white space to Python ("\x1f").
            return [Damage(0, _("the file is empty but should start with the header row"), _FIX)]
        return damage

    def _line(self, number: int, text: str, *, header: bool) -> Damage | None:
        try:
            rows = list(csv.reader([text], strict=True))
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                problem = _(
                    "a quote mark opens a value that is not closed on the same line, so "
                    "the lines after it would be read as part of this one"
                )
            else:
                problem = _("the line cannot be read as comma-separated values ({exc})").format(
                    exc=exc
                )
            return Damage(number, problem, _QUOTE_FIX)
        row = rows[0] if rows else []
        if header:
            if tuple(cell.strip().lower() for cell in row) != HEADER:
                return Damage(
                    number,
                    _("the header should be '{join}', not '{short}'").format(
                        join=",".join(HEADER), short=_short(",".join(row))
                    ),
                    _(
                        "Put that header back as the first line (in a spreadsheet: save as "
                        "'CSV UTF-8', comma-separated), or restore the file from a backup."
                    ),
                )
            return None
        if not any(cell.strip() for cell in row):
            return None  # a spreadsheet's empty row (",,,,") names nobody
        if len(row) != len(HEADER):
            return Damage(
                number,
                _("{count} fields instead of {count2} ({join})").format(
                    count=len(row), count2=len(HEADER), join=",".join(HEADER)
                ),
                _(
                    "Each line needs exactly five values separated by commas; put quotes "
                    "around a value that contains a comma. {fix}"
                ).format(fix=_FIX),
            )
        email, action, when, source, reason = (unprotect(cell).strip() for cell in row)
        if action not in (UNSUBSCRIBED, RESUBSCRIBED):
            return Damage(
                number,
                _("the action must be '{unsubscribed}' or '{resubscribed}', not '{short}'").format(
                    unsubscribed=UNSUBSCRIBED, resubscribed=RESUBSCRIBED, short=_short(action)
                ),
                _FIX,
            )
        try:
            moment = _utc(datetime.fromisoformat(when))
        except ValueError:
            return Damage(
                number,
                _("'{short}' is not a time like 2025-03-01T09:30:00Z").format(short=_short(when)),
                _FIX,
            )
        try:
            key = _key(email)
        except SmakomError as exc:
            return Damage(number, str(exc), _FIX)
        if self._previous is not None and moment < self._previous[0]:
            self.notes.append(
                Damage(
                    number,
                    _("dated {when}, earlier than line {line} above it").format(
                        when=when, line=self._previous[1]
                    ),
                    _(
                        "Nothing to repair: the time decides which event of an address is "
                        "the latest, not the order of the lines."
                    ),
                )
            )
        if self._previous is None or moment >= self._previous[0]:
            self._previous = (moment, number)
        self.add(key, action, moment, Entry(key, when, source, reason, number))
        return None


def _stamp(moment: datetime) -> str:
    """A UTC time as written in the file: to the second, or to the millisecond when an event
    from afar has them (an unsubscribe and its undo a moment later keep their order)."""
    spec = "milliseconds" if moment.microsecond >= 1000 else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _utc(moment: datetime) -> datetime:
    """A time without a zone is taken as UTC, as smakom writes them."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _short(text: str, limit: int = 60) -> str:
    """A value short enough for one line of a message, its control characters shown as
    escapes (a NUL or an escape sequence must not reach the terminal)."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# The file is read again whenever it changes, also during a send; checking an address costs
# about 40 µs. The cache is the suppression list's own, so that streaming a long subscriber
# list does not fill it (memory must not grow with the list).
@functools.lru_cache(maxsize=1 << 15)
def _key(email: str) -> str:
    return parse_address(email).key


def _append(data: bytes | None, rows: list[tuple[str, ...]]) -> bytes:
    """The file (kept byte for byte) with new rows added, as UTF-8 with a BOM.

    The BOM makes Excel read å, ä and ö correctly when someone opens the file.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    if data is None:
        writer.writerow(HEADER)
    old = (data or b"").removeprefix(_BOM)
    if old and not old.endswith((b"\n", b"\r")):
        buffer.write("\r\n")
    writer.writerows([protect(flatten(cell)) for cell in row] for row in rows)
    return _BOM + old + buffer.getvalue().encode("utf-8")


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes whenever the file is replaced: inode, size and modification time."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns)
