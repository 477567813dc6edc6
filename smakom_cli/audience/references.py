"""The signed reference in every message's Message-ID: which issue went to which recipient.

A bounce often quotes nothing of the original message but its headers. The Message-ID tells
`smakom inbox` the issue and the recipient without showing the address to anyone who sees
the header: the recipient is a keyed id (a truncated HMAC of the address with the
unsubscribe-link key), and the issue and id together are signed with the same key, so a
forged bounce cannot name a subscriber it never saw. The form is

    <{stamp}.{issue}.{recipient id}.{signature}@{domain}>

with `stamp` the time in nanoseconds (hex), which keeps every Message-ID unique even when
an issue is sent again.
"""

from __future__ import annotations

import base64
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_ID_CHARS = 16
_SIGNATURE_CHARS = 12
_PLAIN_SLUG = re.compile(r"[A-Za-z0-9_-]+")
# The left part of a reference: anywhere in a message (a quoted header, a References line,
# a bounce's text), a match is only a candidate until its signature checks out.
_REFERENCE = re.compile(
    rb"([0-9a-f]{1,20})\.([A-Za-z0-9_~-]{1,200})\.([0-9a-f]{16})\.([0-9a-f]{12})@", re.ASCII
)


@dataclass(frozen=True)
class Reference:
    """What a verified Message-ID reference names: the issue and the recipient's keyed id."""

    issue: str
    recipient_id: str


def recipient_id(secret: bytes, key: str) -> str:
    """The recipient's keyed id: stable per address and key, and says nothing of the address."""
    return hmac.digest(secret, b"id:" + key.encode("utf-8"), "sha256").hex()[:_ID_CHARS]


class MessageIds:
    """Message-IDs for one issue; the keyed hashes are set up once, not per message."""

    def __init__(self, secret: bytes, issue: str, domain: str) -> None:
        self._ids = hmac.new(secret, b"id:", "sha256")
        self._signatures = hmac.new(secret, b"ref:", "sha256")
        self._slug = _encode_slug(issue)
        self._domain = domain

    def for_recipient(self, key: str) -> str:
        """A unique Message-ID (with <>) carrying the signed reference to the issue and `key`."""
        ids = self._ids.copy()
        ids.update(key.encode("utf-8"))
        body = f"{time.time_ns():x}.{self._slug}.{ids.hexdigest()[:_ID_CHARS]}"
        signature = self._signatures.copy()
        signature.update(body.encode("ascii"))
        return f"<{body}.{signature.hexdigest()[:_SIGNATURE_CHARS]}@{self._domain}>"


def message_id(secret: bytes, issue: str, key: str, domain: str) -> str:
    """One Message-ID with the signed reference (see `MessageIds` for many)."""
    return MessageIds(secret, issue, domain).for_recipient(key)


def find_references(secret: bytes, texts: Iterable[bytes]) -> list[Reference]:
    """Every reference with a valid signature in these texts, in order, without repeats."""
    found: list[Reference] = []
    for text in texts:
        for match in _REFERENCE.finditer(text):
            stamp, slug, rid, signature = (part.decode("ascii") for part in match.groups())
            body = f"{stamp}.{slug}.{rid}"
            if not hmac.compare_digest(signature, _sign(secret, body)):
                continue
            issue = _decode_slug(slug)
            if issue is None:
                continue
            reference = Reference(issue=issue, recipient_id=rid)
            if reference not in found:
                found.append(reference)
    return found


def ids_for(secret: bytes, keys: Iterable[str]) -> Mapping[str, str]:
    """Recipient id → address key, for mapping a reference back to an address."""
    return {recipient_id(secret, key): key for key in keys}


def _sign(secret: bytes, body: str) -> str:
    return hmac.digest(secret, b"ref:" + body.encode("ascii"), "sha256").hex()[:_SIGNATURE_CHARS]


def _encode_slug(issue: str) -> str:
    """The issue name as it is when it is safe in a Message-ID, else `~` and base64url."""
    if _PLAIN_SLUG.fullmatch(issue):
        return issue
    return "~" + base64.urlsafe_b64encode(issue.encode("utf-8")).rstrip(b"=").decode("ascii")


def _decode_slug(slug: str) -> str | None:
    if not slug.startswith("~"):
        return slug
    text = slug[1:]
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
