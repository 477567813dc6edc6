"""One MIME message per recipient, assembled from parts encoded once per issue.

Python's `email` package takes about 4 ms to build and serialise one message of this size,
which caps a send at some 250 messages a second. Here everything that is the same for every
recipient (headers, the quoted-printable text and HTML between personal fields, embedded
images) is encoded once; per recipient only the personal fields and a few headers are
encoded and the pieces joined. Quoted-printable pieces end in a soft line break, so pieces
encoded separately join into valid quoted-printable.

Headers are folded here too (`_Folder`): a server refuses a message with a line over 998
octets, so a long subject or display name must be split over lines, and anything the
folding cannot split (a URL in List-Unsubscribe) is `smakom check`'s to report.
"""

from __future__ import annotations

import base64
import binascii
import html
import itertools
import re
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import formatdate

from smakom_cli.audience.references import MessageIds
from smakom_cli.audience.unsubscribe_links import UnsubscribeLink
from smakom_cli.compose.render import PersonalText, RenderedIssue
from smakom_cli.config import Config
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# In a header, a line break is only ever CRLF followed by a space (folding, RFC 5322 2.2.3).
_STRAY_BREAK = re.compile(r"\r(?!\n[ \t])|(?<!\r)\n|\x00")
_SOFT_BREAK = b"=\r\n"

# RFC 5322 2.1.1: a line SHOULD be at most 78 characters and MUST be at most 998 octets (plus
# CRLF); servers refuse longer lines ("500 Line too long"), for every recipient alike.
LINE_LIMIT = 998
_FOLD_AT = 78
# RFC 2047 2 and 4.2: an encoded-word is at most 75 characters; Q encoding, as readable as any.
_EW_START, _EW_END = "=?utf-8?q?", "?="
_EW_PAYLOAD = 75 - len(_EW_START) - len(_EW_END)
# A word of a display name goes into an encoded-word whole when its encoding is at most this
# long (so it fits on the first line even after "Reply-To:"): Python's address parser, unlike
# RFC 2047 6.2 and mail programs, reads a space between two encoded-words, so a run of them
# is split only where the name has a space.
_PHRASE_PIECE = 40
_SPACES = re.compile(r"[\x00-\x20\x7f]+")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # RFC 5322 3.2.3 atext
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/^_`{|}~-]+)*")
# RFC 2047 5(3): the characters an encoded-word in a phrase may carry as they are.
_Q_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
# For str.translate of UTF-8 bytes read as Latin-1, as `email.quoprimime` does: C speed.
_Q = {
    byte: "_" if byte == 0x20 else chr(byte) if chr(byte) in _Q_PLAIN else f"={byte:02X}"
    for byte in range(256)
}


@dataclass(frozen=True)
class Recipient:
    """Who one message is for: the To address, the display name and the template values."""

    address: str
    name: str
    values: Mapping[str, str]


@dataclass(frozen=True)
class _EncodedBody:
    """A personal text as quoted-printable pieces, with the fields between them."""

    pieces: tuple[bytes, ...]
    source: PersonalText

    @classmethod
    def encode(cls, text: PersonalText) -> _EncodedBody:
        return cls(tuple(_qp(chunk) for chunk in text.chunks), text)

    def fill(self, values: Mapping[str, str]) -> list[bytes]:
        out = [self.pieces[0]]
        for slot, piece in zip(self.source.fields, self.pieces[1:], strict=True):
            value = values.get(slot.name) or slot.fallback
            out.append(_qp(html.escape(value) if self.source.is_html else value))
            out.append(piece)
        return out


class MessageBuilder:
    """Builds each recipient's message bytes for one rendered issue."""

    def __init__(
        self,
        rendered: RenderedIssue,
        config: Config,
        *,
        subject_prefix: str = "",
        secret: bytes | None = None,
    ) -> None:
        """`secret` (the unsubscribe-link key) makes each Message-ID a signed reference."""
        sender = config.sender
        self._domain = _ascii_domain(sender.email.rpartition("@")[2] or "localhost")
        self._ids = MessageIds(secret, rendered.issue.slug, self._domain) if secret else None
        self._text = _EncodedBody.encode(rendered.text)
        self._html = _EncodedBody.encode(rendered.html)
        self._outer = f"=_smakom_alt_{secrets.token_hex(12)}"
        self._inner = f"=_smakom_rel_{secrets.token_hex(12)}"
        static = [
            _address_header("From", sender.name, sender.email),
            *([_address_header("Reply-To", "", sender.reply_to)] if sender.reply_to else []),
            _unstructured_header("Subject", subject_prefix + rendered.issue.subject),
            _phrase_header("List-Id", _one_line(config.newsletter.name), f"<{config.list_id}>"),
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative;\r\n boundary="{self._outer}"',
        ]
        self._static_headers = "\r\n".join(_one_line_each(static)).encode("ascii")
        self._text_head = (
            f"\r\n\r\n--{self._outer}\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        html_head = (
            'Content-Type: text/html; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        if rendered.image_mode == "embed" and rendered.images:
            self._html_head = (
                f"\r\n--{self._outer}\r\n"
                f'Content-Type: multipart/related;\r\n boundary="{self._inner}"\r\n\r\n'
                f"--{self._inner}\r\n{html_head}"
            ).encode("ascii")
            self._tail = self._images(rendered) + f"\r\n--{self._inner}--\r\n".encode("ascii")
        else:
            self._html_head = f"\r\n--{self._outer}\r\n{html_head}".encode("ascii")
            self._tail = b""
        self._tail += f"\r\n--{self._outer}--\r\n".encode("ascii")

    def build(self, recipient: Recipient, unsubscribe: UnsubscribeLink) -> bytes:
        """The complete message for one recipient, CRLF line endings."""
        values = {**recipient.values, "unsubscribe_url": unsubscribe.footer_url}
        headers = [
            _address_header("To", recipient.name, recipient.address),
            f"Date: {formatdate(localtime=True)}",
            f"Message-ID: {self._message_id(recipient)}",
        ]
        if unsubscribe.header:
            headers.append(f"List-Unsubscribe: {unsubscribe.header}")
        if unsubscribe.one_click:
            headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        parts = [
            "\r\n".join(_one_line_each(headers)).encode("utf-8"),
            b"\r\n",
            self._static_headers,
            self._text_head,
            *self._text.fill(values),
            self._html_head,
            *self._html.fill(values),
            self._tail,
        ]
        return b"".join(parts)

    def _message_id(self, recipient: Recipient) -> str:
        """With the key, the issue and recipient signed in (see references.py) for bounces."""
        if self._ids is None:
            return f"<{time.time_ns():x}.{uuid.uuid4().hex[:16]}@{self._domain}>"
        return self._ids.for_recipient(recipient.address.strip().lower())

    def _images(self, rendered: RenderedIssue) -> bytes:
        parts = []
        for image in rendered.images:
            try:
                data = image.path.read_bytes()
            except OSError:
                raise SmakomError(
                    _("{origin}: the image {path} cannot be read; check the file name.").format(
                        origin=image.origin, path=image.path
                    )
                ) from None
            name = _CONTROL.sub("", image.path.name).replace('"', "")
            cid = image.src.removeprefix("cid:")
            parts.append(
                (
                    f"\r\n--{self._inner}\r\n"
                    f'Content-Type: {image.mime_type};\r\n name="{name}"\r\n'
                    "Content-Transfer-Encoding: base64\r\n"
                    f"Content-ID: <{cid}>\r\n"
                    f'Content-Disposition: inline;\r\n filename="{name}"\r\n\r\n'
                ).encode()
                + base64.encodebytes(data).replace(b"\n", b"\r\n").rstrip(b"\r\n")
            )
        return b"".join(parts)


# Headers, boundaries and part headers of a message, generously: a real one has about 1.5 KB.
_ENVELOPE_BYTES = 2048
_IMAGE_PART_HEADERS = 200


def estimated_size(rendered: RenderedIssue, html_body: str, text_body: str) -> int:
    """About how many bytes one recipient's message is, as `MessageBuilder` encodes it:
    both bodies quoted-printable, embedded images in base64 (76 characters a line)."""
    size = _ENVELOPE_BYTES + len(_qp(html_body)) + len(_qp(text_body))
    if rendered.image_mode == "embed":
        for image in rendered.images:
            try:
                raw = image.path.stat().st_size
            except OSError:
                continue  # the check reports a missing image on its own
            encoded = 4 * -(-raw // 3)
            size += _IMAGE_PART_HEADERS + encoded + 2 * -(-encoded // 76)
    return size


def overlong_lines(message: bytes) -> dict[str, int]:
    """Where a message has lines over 998 octets, with the longest: `Subject header`, or
    `text/html part` and the like for a part's body."""
    found: dict[str, int] = {}
    in_headers, header, part = True, "", ""
    for line in message.split(b"\r\n"):
        if line.startswith(b"--=_smakom_"):
            in_headers = True
            continue
        if in_headers and not line:
            in_headers = False
            continue
        if in_headers and line[:1] not in (b" ", b"\t"):
            header = line.partition(b":")[0].decode("ascii", "replace")
            if header.lower() == "content-type":
                part = line.partition(b":")[2].partition(b";")[0].strip().decode("ascii", "replace")
        if len(line) > LINE_LIMIT:
            where = f"{header} header" if in_headers else f"{part} part"
            found[where] = max(found.get(where, 0), len(line))
    return found


def _qp(text: str) -> bytes:
    if not text:
        return b""
    if "\r" in text:  # a value with Windows' or old Mac line ends: a message has CRLF only
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n") + _SOFT_BREAK


class _Folder:
    """One header's lines (RFC 5322 2.2.3), each filled up to 78 characters before the next."""

    def __init__(self, field: str) -> None:
        self.head = f"{field}:"
        self.lines: list[str] = []
        self.line = self.head

    @property
    def longest_word(self) -> int:
        """The longest word that still fits on the first line, after the header name."""
        return _FOLD_AT - len(self.head) - 1

    def plain(self, word: str) -> None:
        """The word as it is, on a new line when it does not fit on this one."""
        if self.line != self.head and len(self.line) + 1 + len(word) > _FOLD_AT:
            self._new_line()
        self.line += " " + word

    def encoded(self, pieces: Iterable[str]) -> None:
        """Q-encoded pieces in encoded-words of at most 75 characters, which end only between
        two pieces (never inside a character's bytes, RFC 2047 5)."""
        payload = ""
        for piece in pieces:
            room = min(_EW_PAYLOAD, _FOLD_AT - len(self.line) - 1 - len(_EW_START + _EW_END))
            if len(payload) + len(piece) <= room:
                payload += piece
                continue
            if payload:
                self.line += f" {_EW_START}{payload}{_EW_END}"
            self._new_line()
            payload = piece
        self.line += f" {_EW_START}{payload}{_EW_END}"

    def _new_line(self) -> None:
        self.lines.append(self.line)
        self.line = ""

    def header(self) -> str:
        return "\r\n".join([*self.lines, self.line])


def _unstructured_header(field: str, text: str) -> str:
    """`Field: text` folded at spaces; a word that is not plain ASCII, or too long for a line,
    is encoded (RFC 2047), and so can be split anywhere: it never makes a line too long.

    Runs of spaces and control characters become one space (the header reads the same).
    """
    folder = _Folder(field)
    longest = folder.longest_word

    def is_plain(word: str) -> bool:
        return word.isascii() and "=?" not in word and len(word) <= longest

    for plain, group in itertools.groupby(_one_line(text).split(" "), key=is_plain):
        words = list(group)
        if plain:
            for word in words:
                folder.plain(word)
        else:
            folder.encoded(_q(char) for char in " ".join(words))
    return folder.header()


def _phrase_header(field: str, phrase: str, angle_addr: str) -> str:
    """`Field: phrase <...>` folded, each word of the phrase (RFC 5322 3.2.5) an atom, a
    quoted string or part of an encoded-word; the `<...>` is never split nor encoded."""
    folder = _Folder(field)
    words = [(word, _phrase_word(word, folder.longest_word)) for word in phrase.split(" ")]
    for encode, group in itertools.groupby(words if phrase else [], key=lambda w: w[1] is None):
        pairs = list(group)
        if encode:
            folder.encoded(_phrase_pieces([word for word, _ in pairs]))
        else:
            for word, plain in pairs:
                folder.plain(plain or word)
    folder.plain(angle_addr)
    return folder.header()


def _phrase_word(word: str, longest: int) -> str | None:
    """The word as an atom or quoted string, or None when it must be encoded."""
    if not word.isascii() or "=?" in word or len(word) > longest:
        return None
    if _ATOM.fullmatch(word):
        return word
    quoted = _quoted(word)
    return quoted if len(quoted) <= longest else None


def _quoted(text: str) -> str:
    """ASCII text as an RFC 5322 quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _phrase_pieces(words: list[str]) -> Iterator[str]:
    """The words Q-encoded, each with its following space, whole unless too long."""
    for number, word in enumerate(words, start=1):
        chars = [_q(char) for char in word]
        if number < len(words):
            chars.append("_")
        whole = "".join(chars)
        if len(whole) <= _PHRASE_PIECE:
            yield whole
        else:
            yield from chars


def _q(text: str) -> str:
    """RFC 2047 Q encoding, as allowed in a phrase."""
    return text.encode("utf-8").decode("latin-1").translate(_Q)


def _one_line_each(headers: list[str]) -> list[str]:
    """The last guard against header injection: a header with a line break that is not
    folding (a setting or value that slipped past its check) stops the message."""
    for header in headers:
        if _STRAY_BREAK.search(header):
            field = header.partition(":")[0]
            raise SmakomError(
                _(
                    "the {field} header would contain a line break ({header!r}); check the "
                    "setting or value it comes from."
                ).format(field=field, header=header[:60])
            )
    return headers


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _address_header(field: str, name: str, address: str) -> str:
    """`Field: Name <address>` folded; the name is encoded where needed, the address never is.

    Control characters are removed from the name, so a subscriber called
    "Eve\\r\\nBcc: x@y" cannot add a header.
    """
    local, _at, domain = address.strip().rpartition("@")
    addr_spec = f"{local}@{_ascii_domain(domain)}"
    name = _one_line(name)
    if not name:
        return f"{field}: {addr_spec}"
    # Per recipient, so the usual short name is written without folding: as it is, quoted,
    # or as one encoded-word, whichever it needs.
    room = _FOLD_AT - len(field) - len(addr_spec) - 5
    if len(name) <= room:
        if _ATOMS.fullmatch(name):
            return f"{field}: {name} <{addr_spec}>"
        quoted = _quoted(name) if name.isascii() and "=?" not in name else ""
        if quoted and len(quoted) <= room:
            return f"{field}: {quoted} <{addr_spec}>"
        encoded = _q(name)
        if len(encoded) + len(_EW_START + _EW_END) <= room:
            return f"{field}: {_EW_START}{encoded}{_EW_END} <{addr_spec}>"
    return _phrase_header(field, name, f"<{addr_spec}>")


def _ascii_domain(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return domain
