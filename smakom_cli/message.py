"""One MIME message per recipient, assembled from parts encoded once per issue.

Python's `email` package takes about 4 ms to build and serialise one message of this size,
which caps a send at some 250 messages a second. Here everything that is the same for every
recipient (headers, the quoted-printable text and HTML between personal fields, embedded
images) is encoded once; per recipient only the personal fields and a few headers are
encoded and the pieces joined. Quoted-printable pieces end in a soft line break, so pieces
encoded separately join into valid quoted-printable.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate

from smakom_cli.config import Config
from smakom_cli.errors import SmakomError
from smakom_cli.references import MessageIds
from smakom_cli.render import PersonalText, RenderedIssue
from smakom_cli.unsubscribe_links import UnsubscribeLink

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SOFT_BREAK = b"=\r\n"


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
        subject = _header_value(subject_prefix + rendered.issue.subject, "Subject")
        static = [
            f"From: {_address_header(sender.name, sender.email)}",
            *([f"Reply-To: {_address_header('', sender.reply_to)}"] if sender.reply_to else []),
            f"Subject: {subject}",
            f"List-Id: {_header_value(config.newsletter.name, 'List-Id')} <{config.list_id}>",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{self._outer}"',
        ]
        self._static_headers = "\r\n".join(static).encode("ascii")
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
                f'Content-Type: multipart/related; boundary="{self._inner}"\r\n\r\n'
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
            f"To: {_address_header(recipient.name, recipient.address)}",
            f"Date: {formatdate(localtime=True)}",
            f"Message-ID: {self._message_id(recipient)}",
        ]
        if unsubscribe.header:
            headers.append(f"List-Unsubscribe: {unsubscribe.header}")
        if unsubscribe.one_click:
            headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        parts = [
            "\r\n".join(headers).encode("utf-8"),
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
                    f"{image.origin}: the image {image.path} cannot be read; check the file name."
                ) from None
            name = _CONTROL.sub("", image.path.name).replace('"', "")
            cid = image.src.removeprefix("cid:")
            parts.append(
                (
                    f"\r\n--{self._inner}\r\n"
                    f'Content-Type: {image.mime_type}; name="{name}"\r\n'
                    "Content-Transfer-Encoding: base64\r\n"
                    f"Content-ID: <{cid}>\r\n"
                    f'Content-Disposition: inline; filename="{name}"\r\n\r\n'
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


def _qp(text: str) -> bytes:
    if not text:
        return b""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n") + _SOFT_BREAK


def _header_value(text: str, name: str) -> str:
    """A header value on one line of input, RFC 2047-encoded when it is not plain ASCII."""
    clean = _CONTROL.sub(" ", text).strip()
    if clean.isascii():
        return clean
    return Header(clean, "utf-8", header_name=name).encode(linesep="\r\n")


def _address_header(name: str, address: str) -> str:
    """`Name <address>`; the name is encoded when needed, the address never is.

    Control characters are removed from the name, so a subscriber called
    "Eve\\r\\nBcc: x@y" cannot add a header.
    """
    local, _, domain = address.strip().rpartition("@")
    return formataddr((_CONTROL.sub(" ", name).strip(), f"{local}@{_ascii_domain(domain)}"))


def _ascii_domain(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return domain
