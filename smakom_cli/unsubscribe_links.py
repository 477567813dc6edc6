"""Personal unsubscribe links: a mailto address and/or an https link with a signed token.

The token names the subscriber and carries an HMAC made with a secret kept in the system
keyring, so editing the link to name someone else does not unsubscribe them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from smakom_cli.config import Config
from smakom_cli.errors import SmakomError

_SIGNATURE_BYTES = 16


@dataclass(frozen=True)
class UnsubscribeLink:
    """One subscriber's ways out: the footer link and the List-Unsubscribe header value."""

    footer_url: str
    header: str
    one_click: bool


def make_token(secret: bytes, address: str) -> str:
    """`<address>.<signature>`, both base64url without padding."""
    key = address.strip().lower().encode()
    return f"{_b64(key)}.{_b64(_sign(secret, key))}"


def address_from_token(secret: bytes, token_or_link: str) -> str:
    """The address a token (or a whole unsubscribe link) was made for; refuses a forgery."""
    token = token_or_link.strip()
    if "://" in token:
        values = parse_qs(urlsplit(token).query).get("token")
        if not values:
            raise SmakomError("the link has no token=… part; paste the whole unsubscribe link.")
        token = values[0]
    encoded, _, signature = token.partition(".")
    try:
        key = _unb64(encoded)
        valid = hmac.compare_digest(_unb64(signature), _sign(secret, key))
    except ValueError:
        valid = False
    if not valid:
        raise SmakomError(
            f"'{token_or_link}' is not a valid unsubscribe token for this newsletter "
            "(it was changed, or made with another key)."
        )
    return key.decode()


def link_for(config: Config, secret: bytes | None, address: str) -> UnsubscribeLink:
    """The subscriber's footer link and List-Unsubscribe header (RFC 2369, RFC 8058)."""
    mailto = config.unsubscribe.mailto
    https = config.unsubscribe.url
    parts = []
    if mailto:
        subject = quote(f"unsubscribe {address}")
        parts.append(f"mailto:{mailto}?subject={subject}")
    if https:
        if secret is None:
            raise SmakomError("an unsubscribe link needs the signing key, and none was given.")
        separator = "&" if "?" in https else "?"
        parts.append(f"{https}{separator}token={make_token(secret, address)}")
    if not parts:
        # `smakom check` reports this as an error, and a real send refuses it.
        return UnsubscribeLink(footer_url="", header="", one_click=False)
    return UnsubscribeLink(
        footer_url=parts[-1],
        header=",\r\n ".join(f"<{part}>" for part in parts),
        one_click=bool(https),
    )


def _sign(secret: bytes, key: bytes) -> bytes:
    return hmac.new(secret, key, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
