"""The subscriber list: a CSV file the association keeps, usually exported from Excel.

Rows are streamed, never held all at once. A row whose address is wrong is reported with its
line number and left out; a file that cannot be used at all is a `SmakomError`.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from smakom_cli.errors import SmakomError
from smakom_cli.i18n import N_, _

DELIMITERS = (",", ";", "\t")
# email-validator's commonest reasons, in English only there: told in the interface language.
_VALIDATOR_SENTENCES = frozenset(
    {
        N_("An email address must have an @-sign."),
        N_("There must be something after the @-sign."),
        N_("There must be something before the @-sign."),
        N_("An email address cannot have two periods in a row."),
        N_("The part after the @-sign is not valid. It should have a period."),
        N_("The part after the @-sign is not valid. It is not within a valid top-level domain."),
        N_("The email address contains invalid characters before the @-sign."),
        N_("The email address contains an invalid character."),
        N_("An email address cannot have a period and a hyphen next to each other."),
        N_("There can't be anything after the email address."),
        N_("The email address is not valid ASCII."),
        N_(
            "The part after the @-sign is a special-use or reserved name that cannot be used "
            "with email."
        ),
    }
)
# Swedish headers people actually use, mapped to the names templates see.
ALIASES = {
    "e-post": "email",
    "epost": "email",
    "e-postadress": "email",
    "e-mail": "email",
    "namn": "name",
    "kommun": "organisation",
}
_CHUNK = 1 << 16
# An ASCII address email-validator accepts as it is (but for the domain's case): a dot-atom
# before the @ (RFC 5322), host-name labels after it, the last ending with a letter.
_ATOM = r"[A-Za-z0-9_!#$%&'*+\-/=?^`{|}~]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(
    rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?:[A-Za-z0-9][A-Za-z0-9-]{{0,61}})?[A-Za-z]\Z"
)
_SPECIAL_USE = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)


@dataclass(frozen=True)
class Address:
    """An e-mail address checked once: where to send it (`send_to`) and who it is (`key`)."""

    send_to: str
    key: str


@dataclass(frozen=True)
class Subscriber:
    """One valid row of the list; `fields` holds every column by its normalised header."""

    email: str
    address: str
    key: str
    name: str
    fields: Mapping[str, str]
    line: int


@dataclass(frozen=True)
class InvalidRow:
    """A row left out of every send, with the sentence that says why."""

    line: int
    value: str
    reason: str


@dataclass(frozen=True)
class DuplicateRow:
    """A row whose address is on the list already: that reader gets one message."""

    line: int
    address: str
    first_line: int


@dataclass(frozen=True)
class AudienceSummary:
    """What a send would do with the list: `valid == active + unsubscribed + duplicates`."""

    rows: int
    valid: int
    active: int
    unsubscribed: int
    duplicates: int
    invalid: tuple[InvalidRow, ...]
    duplicate_rows: tuple[DuplicateRow, ...] = ()


def parse_address(text: str) -> Address:
    """Check an address; internationalised domains are sent in their ASCII (punycode) form."""
    text = text.strip()
    plain = _plain_address(text)
    if plain is not None:
        return plain
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SmakomError(
            _("'{short}' is not an e-mail address ({exc})").format(
                short=_short(text), exc=_(str(exc)) if str(exc) in _VALIDATOR_SENTENCES else exc
            )
        ) from None
    return Address(
        send_to=checked.ascii_email or checked.normalized, key=checked.normalized.lower()
    )


def _plain_address(text: str) -> Address | None:
    """The usual address checked in a few microseconds, the same as email-validator would.

    email-validator parses character by character (quoted parts, Unicode rules), about
    100 µs an address, a third of a dry run's time per message. None: not plainly valid,
    so email-validator decides (and explains what is wrong).
    """
    if len(text) > 254 or not _PLAIN_ADDRESS.match(text):
        return None
    local, _at, domain = text.rpartition("@")
    domain = domain.lower()
    # Longer local parts, "xn--" (Punycode) and other "--" labels, reserved names: its rules.
    if len(local) > 64 or "--" in domain or f".{domain}".endswith(_SPECIAL_USE):
        return None
    address = f"{local}@{domain}"
    return Address(send_to=address, key=address.lower())


def detect_encoding(path: Path) -> str:
    """'utf-8-sig' when the whole file is UTF-8 (with or without a BOM), else 'cp1252'.

    Excel on a Swedish Windows saves "CSV (semikolonavgränsad)" in Windows-1252, and
    "CSV UTF-8" with a BOM. The file is read in chunks so a large list is never held whole.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    is_utf8 = True
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            if b"\0" in chunk:
                raise SmakomError(
                    _(
                        "{name} is not a text CSV file: it contains NUL bytes (is it an Excel "
                        "workbook or a 'Unicode text' export?). In Excel, save it as 'CSV "
                        "UTF-8'."
                    ).format(name=path.name)
                )
            if is_utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    is_utf8 = False
    if is_utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False
    return "utf-8-sig" if is_utf8 else "cp1252"


def numbered_rows(
    lines: Iterable[str], delimiter: str, name: str
) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank CSV row with the line it starts on (a quoted value may span lines).

    Excel writes a cell with a line break in quotes across lines, which is fine; but a quote
    that is never closed swallows every row after it into one value. So a quoted value
    whose lines include one that looks like a row of its own (separated values, and an
    address where the e-mail column is) is an error naming the line it opened on.
    """
    consumed: list[str] = []

    def tee() -> Iterator[str]:
        for line in lines:
            consumed.append(line)
            yield line

    reader = csv.reader(tee(), delimiter=delimiter)
    start = 1
    shape: tuple[int, int] | None = None  # the header's width and its e-mail column
    try:
        for row in reader:
            if len(consumed) > 1 and shape is not None:
                _refuse_runaway_quote(consumed[1:], shape, delimiter, name, start)
            consumed.clear()
            if any(cell.strip() for cell in row):
                if shape is None:
                    shape = _shape(row)
                yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise SmakomError(
            _("{name} line {start}: {exc} (is a quote mark missing its partner?)").format(
                name=name, start=start, exc=exc
            )
        ) from None


def _shape(header: list[str]) -> tuple[int, int]:
    """The header's number of columns and the position of its e-mail column (-1: none)."""
    names = [ALIASES.get(cell.strip().lower(), cell.strip().lower()) for cell in header]
    return len(names), names.index("email") if "email" in names else -1


def _refuse_runaway_quote(
    inside: list[str], shape: tuple[int, int], delimiter: str, name: str, start: int
) -> None:
    width, email = shape
    if email < 0:
        return
    for offset, line in enumerate(inside, start=1):
        # Not parsed as CSV: the quote that runs on may close inside this very line.
        cells = line.rstrip("\r\n").split(delimiter)
        if len(cells) < min(width, 2) or len(cells) <= email or "@" not in cells[email]:
            continue
        try:
            parse_address(cells[email].strip().strip('"'))
        except SmakomError:
            continue
        raise SmakomError(
            _(
                "{file} line {line}: a quote mark opens a value that is not closed on that "
                "line, so line {row} ({address}) and every line after it up to the next quote "
                "mark would be read as part of it. Close the quote on line {line}, or remove "
                'it (a quote mark inside a value is written twice: ""). Nobody is mailed '
                "until it is fixed."
            ).format(
                file=name, line=start, row=start + offset, address=_short(cells[email].strip())
            )
        )


def read_columns(path: Path) -> tuple[str, ...]:
    """The list's column names as templates see them: stripped, lowercase, Swedish mapped."""
    with closing(_rows(path)) as rows:
        return tuple(name for name in _header(path, rows) if name)


def iter_subscribers(path: Path) -> Iterator[Subscriber | InvalidRow]:
    """Every data row in file order, duplicates included."""
    with closing(_rows(path)) as rows:
        columns = _header(path, rows)
        for line, row in rows:
            yield _subscriber(columns, row, line)


def iter_recipients(path: Path, suppressed: Callable[[str], bool]) -> Iterator[Subscriber]:
    """Who gets the newsletter: valid rows, each address once, nobody who unsubscribed."""
    seen: set[str] = set()
    for item in iter_subscribers(path):
        if isinstance(item, Subscriber) and item.key not in seen:
            seen.add(item.key)
            if not suppressed(item.key):
                yield item


def summarise(path: Path, suppressed: Callable[[str], bool]) -> AudienceSummary:
    """Count what a send would do with each row, and collect the rows it would leave out."""
    first_lines: dict[str, int] = {}
    rows = valid = active = unsubscribed = 0
    invalid: list[InvalidRow] = []
    duplicates: list[DuplicateRow] = []
    for item in iter_subscribers(path):
        rows += 1
        if isinstance(item, InvalidRow):
            invalid.append(item)
            continue
        valid += 1
        if item.key in first_lines:
            duplicates.append(DuplicateRow(item.line, item.email, first_lines[item.key]))
            continue
        first_lines[item.key] = item.line
        if suppressed(item.key):
            unsubscribed += 1
        else:
            active += 1
    return AudienceSummary(
        rows, valid, active, unsubscribed, len(duplicates), tuple(invalid), tuple(duplicates)
    )


def find_subscriber(path: Path, email: str) -> Subscriber | None:
    """The first row with this address (in any case), or None."""
    key = parse_address(email).key
    return find_subscribers(path, {key}).get(key)


def find_subscribers(path: Path, keys: Collection[str]) -> dict[str, Subscriber]:
    """The first row for each of `keys` that is on the list, found in one pass."""
    found: dict[str, Subscriber] = {}
    for item in iter_subscribers(path):
        if isinstance(item, Subscriber) and item.key in keys and item.key not in found:
            found[item.key] = item
            if len(found) == len(keys):
                break
    return found


def _rows(path: Path) -> Generator[tuple[int, list[str]], None, None]:
    """The list's non-blank rows with their line numbers, encoding and delimiter sniffed."""
    try:
        encoding = detect_encoding(path)
        delimiter = _delimiter(path, encoding)
        file = path.open(encoding=encoding, newline="")
    except FileNotFoundError:
        raise SmakomError(
            _(
                "The subscriber list {path} does not exist. Put it there, or point "
                "'subscribers' under [newsletter] in smakom.toml at it."
            ).format(path=path)
        ) from None
    except OSError as exc:
        raise SmakomError(
            _("The subscriber list {path} cannot be read ({value}).").format(
                path=path, value=exc.strerror or exc
            )
        ) from None
    with file:
        try:
            yield from numbered_rows(file, delimiter, path.name)
        except UnicodeDecodeError:
            # Only bytes Windows-1252 leaves undefined get here: the file is neither encoding.
            raise SmakomError(
                _(
                    "{name} is neither UTF-8 nor Windows-1252 text. In Excel, save it as "
                    "'CSV UTF-8'."
                ).format(name=path.name)
            ) from None


def _delimiter(path: Path, encoding: str) -> str:
    """The separator used most in the first non-blank line; a one-column list has none."""
    with path.open(encoding=encoding, errors="replace") as file:
        header = next((line for line in file if line.strip()), "")
    return max(DELIMITERS, key=header.count)


def _header(path: Path, rows: Iterator[tuple[int, list[str]]]) -> tuple[str, ...]:
    """Column names by position ('' for an unnamed one); the list must have an email column."""
    first = next(rows, None)
    if first is None:
        raise SmakomError(
            _(
                "{name} is empty. It needs a header row with an 'email' (or 'E-post') "
                "column and then one row per subscriber."
            ).format(name=path.name)
        )
    line, header = first
    names = [cell.strip().lower() for cell in header]
    columns: list[str] = []
    for name in names:
        alias = ALIASES.get(name, name)
        # A column literally called 'organisation' wins over 'Kommun', which then keeps its name.
        column = alias if alias not in names and alias not in columns else name
        if column and column in columns:
            raise SmakomError(
                _(
                    "{name} line {line}: two columns are called '{column}'. Rename one of them."
                ).format(name=path.name, line=line, column=column)
            )
        columns.append(column)
    if "email" not in columns:
        found = ", ".join(f"'{cell.strip()}'" for cell in header if cell.strip())
        raise SmakomError(
            _(
                "{name} has no e-mail column: the header on line {line} has {found}. "
                "Call the column with the addresses 'email' or 'E-post'."
            ).format(name=path.name, line=line, found=found)
        )
    return tuple(columns)


def _subscriber(columns: tuple[str, ...], row: list[str], line: int) -> Subscriber | InvalidRow:
    cells = [cell.strip() for cell in row]
    fields = {
        name: cells[index] if index < len(cells) else ""
        for index, name in enumerate(columns)
        if name
    }
    email = fields["email"]
    while cells and not cells[-1]:
        cells.pop()  # trailing delimiters are harmless
    if len(cells) > len(columns):
        return InvalidRow(
            line,
            email,
            _(
                "the row has {values} values but the header has {columns} columns; put quotes "
                "around any value that contains the separator"
            ).format(values=len(cells), columns=len(columns)),
        )
    if not email:
        return InvalidRow(line, email, _("the e-mail address is empty"))
    try:
        address = parse_address(email)
    except SmakomError as exc:
        return InvalidRow(line, email, str(exc))
    return Subscriber(
        email=email,
        address=address.send_to,
        key=address.key,
        name=fields.get("name", ""),
        fields=MappingProxyType(fields),
        line=line,
    )


def _short(text: str, limit: int = 60) -> str:
    """A value short enough for one line of an error message (an unclosed quote eats the file)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
