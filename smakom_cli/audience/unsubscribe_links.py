"""Personal unsubscribe links: a mailto address and/or an https link with a signed token.

A token names the subscriber by an opaque identifier, never by the address: links end up in
web-server logs and in the logs of every link scanner a mail passes. The identifier is an
HMAC of the address, so the CLI maps it back by computing it for the addresses it knows (the
list, the suppression list, the journals); a second HMAC over it means editing the link does
not unsubscribe anyone. Both are made with a secret kept in the system keyring.

Links in issues sent before (`<base64 address>.<signature>`) keep working.

A proof (`smakom send --to`) carries proof links: genuine, but of their own kind, so the
service and `smakom unsubscribe` recognise them and act on nobody, whoever the proof was
personalised as.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from smakom_cli.config import Config
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import N_, _

_VERSION = b"\x02"
_PROOF_VERSION = b"\x03"
_VERSIONS = (_VERSION, _PROOF_VERSION)
_ID_BYTES = 12
_MAC_BYTES = 12
_LEGACY_SIGNATURE_BYTES = 16
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class UnsubscribeLink:
    """One subscriber's ways out: the footer link and the List-Unsubscribe header value."""

    footer_url: str
    header: str
    one_click: bool


@dataclass(frozen=True)
class TokenSubject:
    """Whom a verified token names: always the opaque id; the address only in an old token."""

    subscriber_id: str
    address: str = ""
    proof: bool = False


# What a proof link says, on the service's page (in Swedish, for readers) and from
# `smakom unsubscribe` (the same words in the office's language).
PROOF_LINK_TITLE = "Det här är ett provutskick"
PROOF_LINK_TEXT = (
    "Länken kommer från ett provutskick och avregistrerar ingen; ingenting sparades. "
    "Avregistreringslänken i det riktiga nyhetsbrevet fungerar som vanligt."
)
PROOF_LINK_SENTENCE = N_(
    "This link is from a proof (a test send): it unsubscribes nobody and nothing was "
    "recorded; the unsubscribe link in the real newsletter works as usual."
)


def subscriber_id(secret: bytes, address: str) -> str:
    """The opaque identifier of an address in links (the same in every issue)."""
    key = address.strip().lower().encode()
    return _b64(_id_bytes(secret, key))


def make_token(secret: bytes, address: str, *, proof: bool = False) -> str:
    """A token naming `address` without showing it: version, id and signature, base64url.

    A proof token is of its own version, which nothing unsubscribes with.
    """
    version = _PROOF_VERSION if proof else _VERSION
    ident = _id_bytes(secret, address.strip().lower().encode())
    return _b64(version + ident + _mac(secret, ident, version))


def read_token(secret: bytes, token_or_link: str) -> TokenSubject:
    """Check a token (or a whole unsubscribe link); refuses a forged or damaged one."""
    token = token_or_link.strip()
    if "://" in token:
        values = parse_qs(urlsplit(token).query).get("token")
        if not values:
            raise SmakomError(_("the link has no token=… part; paste the whole unsubscribe link."))
        token = values[0]
    subject = _verify(secret, token)
    if subject is None:
        shown = " ".join(token_or_link.split())
        shown = shown if len(shown) <= 80 else shown[:79] + "…"
        raise SmakomError(
            _(
                "'{shown}' is not a valid unsubscribe token for this newsletter (it "
                "was changed, or made with another key)."
            ).format(shown=shown)
        )
    return subject


def address_from_token(secret: bytes, token_or_link: str, known: Iterable[str] = ()) -> str:
    """The address a token (or a whole link) was made for, looked up among `known` addresses.

    An old token carries its address; a new one only its id, found by computing the id of
    each known address.
    """
    subject = read_token(secret, token_or_link)
    if subject.proof:
        raise SmakomError(_(PROOF_LINK_SENTENCE))
    if subject.address:
        return subject.address
    found = index_by_id(secret, known).get(subject.subscriber_id)
    if found is None:
        raise SmakomError(
            _(
                "the unsubscribe link is genuine, but its subscriber is not on the "
                "subscriber list, in unsubscribed.csv or in the journals in sent/; "
                "unsubscribe them by address."
            )
        )
    return found


def index_by_id(secret: bytes, addresses: Iterable[str]) -> dict[str, str]:
    """Each address's opaque id mapped back to the (lowercase) address."""
    index: dict[str, str] = {}
    for address in addresses:
        key = address.strip().lower()
        index[subscriber_id(secret, key)] = key
    return index


def link_for(
    config: Config, secret: bytes | None, address: str, *, proof: bool = False
) -> UnsubscribeLink:
    """The subscriber's footer link and List-Unsubscribe header (RFC 2369, RFC 8058).

    For a proof, `address` is the proof's own address and the https link a proof link.
    """
    mailto = config.unsubscribe.mailto
    https = config.unsubscribe.url
    parts = []
    if mailto:
        # The reader writes this mail, and the readers are Swedish (a mixed spot, #25).
        subject = quote(f"avregistrera {address}")
        parts.append(f"mailto:{mailto}?subject={subject}")
    if https:
        if secret is None:
            raise SmakomError(_("an unsubscribe link needs the signing key, and none was given."))
        separator = "&" if "?" in https else "?"
        parts.append(f"{https}{separator}token={make_token(secret, address, proof=proof)}")
    if not parts:
        # `smakom check` reports this as an error, and a real send refuses it.
        return UnsubscribeLink(footer_url="", header="", one_click=False)
    return UnsubscribeLink(
        footer_url=parts[-1],
        header=",\r\n ".join(f"<{part}>" for part in parts),
        one_click=bool(https),
    )


def _verify(secret: bytes, token: str) -> TokenSubject | None:
    """The subject of a genuine token of either kind, else None."""
    encoded, dot, signature = token.partition(".")
    if dot:
        return _verify_legacy(secret, encoded, signature)
    raw = _unb64(token)
    version = raw[:1] if raw is not None else b""
    if raw is None or len(raw) != 1 + _ID_BYTES + _MAC_BYTES or version not in _VERSIONS:
        return None
    ident, mac = raw[1 : 1 + _ID_BYTES], raw[1 + _ID_BYTES :]
    if not hmac.compare_digest(mac, _mac(secret, ident, version)):
        return None
    return TokenSubject(subscriber_id=_b64(ident), proof=version == _PROOF_VERSION)


def _verify_legacy(secret: bytes, encoded: str, signature: str) -> TokenSubject | None:
    """An old `<base64 address>.<signature>` token, as in issues sent before opaque links."""
    key, mac = _unb64(encoded), _unb64(signature)
    if key is None or mac is None:
        return None
    expected = hmac.new(secret, key, hashlib.sha256).digest()[:_LEGACY_SIGNATURE_BYTES]
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        address = key.decode()
    except UnicodeDecodeError:
        return None
    return TokenSubject(subscriber_id=_b64(_id_bytes(secret, key)), address=address)


def _id_bytes(secret: bytes, key: bytes) -> bytes:
    return hmac.new(secret, b"smakom-id\0" + key, hashlib.sha256).digest()[:_ID_BYTES]


def _mac(secret: bytes, ident: bytes, version: bytes) -> bytes:
    return hmac.new(secret, b"smakom-token\0" + version + ident, hashlib.sha256).digest()[
        :_MAC_BYTES
    ]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    """Strict base64url without padding: only its alphabet, and only the canonical form."""
    if not _BASE64URL.fullmatch(text):
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None
    return data if _b64(data) == text else None
