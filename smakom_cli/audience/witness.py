"""The witness: smakom's own small record of what the journals and the suppression list held.

Both files can be edited, restored from an old backup, cut short by a copy or a sync; read as
they are, each would then say "fewer": fewer already sent, fewer unsubscribed. The witness
(`.smakom/witness.json` in the newsletter folder) remembers, for each journal, how many
recipients it recorded as sent, refused or uncertain and a digest of them, and for the
suppression list a keyed hash (HMAC, with the local key in `.smakom/witness.key`) of every
address whose latest event is an unsubscribe, never the address itself. A file that holds less
than its witness is an error naming what is missing.

The witness only grows, and it lags the files, never leads them: it is written (atomically,
under its lock) after the change it records is on disk, and a count is lowered, or a hash
taken out, before the change that undoes it. A crash in between leaves a witness that knows
less than the files, which is no error. A missing witness (a folder from before it existed, a
fresh copy of the folder) is made again from the files, and the commands say so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from smakom_cli.atomic import PRIVATE, replace_file
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.locks import WAIT_SECONDS, holding, stayed_locked

FOLDER = ".smakom"
FILE = "witness.json"
KEY_FILE = "witness.key"
_VERSION = 1


@dataclass(frozen=True)
class JournalRecord:
    """What one journal held when smakom last closed it."""

    issue: str
    fingerprint: str
    count: int
    digest: str


@dataclass(frozen=True)
class Record:
    """The witness as read; a part that is None was never recorded (to be made from the files)."""

    journals: Mapping[str, JournalRecord] | None = None
    unsubscribed: frozenset[str] | None = None


@dataclass
class Draft:
    """The witness being changed under its lock; written whole when the change is done."""

    journals: dict[str, JournalRecord] | None = None
    unsubscribed: set[str] | None = None


class Witness:
    """The witness of one newsletter folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FOLDER / FILE
        self._key_path = folder / FOLDER / KEY_FILE
        self._lock_path = folder / FOLDER / "witness.lock"

    def lacks(self, *, journals: bool, unsubscribed: bool) -> bool:
        """Whether a part is not recorded yet for files that hold something (a folder from
        before the witness, a fresh copy): they are taken as they are, with a warning."""
        record = self.read()
        return (journals and record.journals is None) or (
            unsubscribed and record.unsubscribed is None
        )

    def read(self) -> Record:
        """The witness on disk; nothing recorded when there is none. Damage is an error."""
        key = self._key()
        if key is None:
            return Record()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Record()
        except (OSError, UnicodeDecodeError) as exc:
            raise self._damaged(str(exc)) from None
        try:
            return _parse(json.loads(text))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise self._damaged(str(exc) or type(exc).__name__) from None

    def hashes(self, keys: Iterable[str]) -> frozenset[str]:
        """The keyed hash of each address; empty without a key (no witness to compare with)."""
        key = self._key()
        if key is None:
            return frozenset()
        return frozenset(_hash(key, address) for address in keys)

    def digest(self, keys: Iterable[str]) -> str:
        """One keyed digest of a set of addresses, the same in any order."""
        key = self._key() or b""
        return hmac.new(key, "\n".join(sorted(keys)).encode("utf-8"), hashlib.sha256).hexdigest()

    @contextmanager
    def updating(self) -> Iterator[Draft]:
        """Change the witness under its lock; written in one step if the draft was changed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with holding(self._lock_path, timeout=WAIT_SECONDS, busy=stayed_locked(self.path)):
            if self._key() is None:
                replace_file(self._key_path, secrets.token_hex(32).encode(), new_mode=PRIVATE)
                self.path.unlink(missing_ok=True)  # a witness without its key tells nothing
            record = self.read()
            draft = Draft(
                journals=None if record.journals is None else dict(record.journals),
                unsubscribed=None if record.unsubscribed is None else set(record.unsubscribed),
            )
            before = _dump(draft) if self.path.exists() else b""
            yield draft
            after = _dump(draft)
            if after != before:
                replace_file(self.path, after, new_mode=PRIVATE)

    def _key(self) -> bytes | None:
        try:
            text = self._key_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise self._damaged(str(exc)) from None
        return text.encode("ascii") if text else None

    def _damaged(self, why: str) -> SmakomError:
        return SmakomError(
            _(
                "{file} is damaged ({why}). It is smakom's record of what the journals and "
                "unsubscribed.csv held; restore it from a backup, or delete it and smakom "
                "makes it again from the files as they are now (then it cannot tell whether "
                "they lost anything before)."
            ).format(file=self.path, why=why)
        )


def _hash(key: bytes, address: str) -> str:
    return hmac.new(key, address.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _parse(data: object) -> Record:
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        raise ValueError(_("not a witness of this smakom"))
    journals: dict[str, JournalRecord] | None = None
    if data.get("journals") is not None:
        if not isinstance(data["journals"], dict):
            raise ValueError(_("the journals part is not a table"))
        journals = {}
        for name, item in data["journals"].items():
            record = JournalRecord(
                issue=item["issue"],
                fingerprint=item["fingerprint"],
                count=item["count"],
                digest=item["digest"],
            )
            if not (
                isinstance(name, str)
                and isinstance(record.issue, str)
                and isinstance(record.fingerprint, str)
                and isinstance(record.digest, str)
                and isinstance(record.count, int)
                and not isinstance(record.count, bool)
                and record.count >= 0
            ):
                raise ValueError(
                    _("the record of {name!r} is not one smakom writes").format(name=name)
                )
            journals[name] = record
    unsubscribed: frozenset[str] | None = None
    if data.get("unsubscribed") is not None:
        items = data["unsubscribed"]
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError(_("the unsubscribed part is not a list of hashes"))
        unsubscribed = frozenset(items)
    return Record(journals=journals, unsubscribed=unsubscribed)


def _dump(draft: Draft) -> bytes:
    data = {
        "version": _VERSION,
        "journals": None
        if draft.journals is None
        else {
            name: {
                "issue": r.issue,
                "fingerprint": r.fingerprint,
                "count": r.count,
                "digest": r.digest,
            }
            for name, r in sorted(draft.journals.items())
        },
        "unsubscribed": None if draft.unsubscribed is None else sorted(draft.unsubscribed),
    }
    return (json.dumps(data, indent=1) + "\n").encode("utf-8")
