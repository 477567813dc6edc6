"""What one message in the office's mailbox is: a bounce, an unsubscribe request, an
auto-reply, or a person's mail.

Pure: the raw bytes and what is known about the list in, a `Verdict` out; nothing is read
or written. Any bytes give a verdict; what cannot be understood is `unknown`, which
`smakom inbox` leaves where it is, untouched.

The order of the questions matters:
1. a delivery status notification (RFC 3464, `multipart/report`) is a bounce, even though
   Postfix and others mark them `Auto-Submitted: auto-replied`;
2. a message from a mail system (`MAILER-DAEMON`, an empty Return-Path) is read by
   flufl.bounce's detectors for the bounce formats that predate RFC 3464 (qmail, Exim, …);
3. an auto-reply (RFC 3834 headers, Microsoft's and others', out-of-office subjects) is
   never a bounce and never an unsubscribe (listmonk counted them as bounces, its #1334);
4. an unsubscribe request names its words in the subject, or in the writer's own text;
5. anything else is a person's mail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Literal

from smakom_cli.audience.references import find_references
from smakom_cli.audience.unsubscribe_links import address_from_token
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

Kind = Literal["hard", "soft", "unsubscribe", "auto-reply", "unknown"]

# flufl.bounce logs a detector's exception with its traceback before raising it; with no
# handler Python would print that to the terminal. The exception itself is handled below.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())

_REASON_LENGTH = 300
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b([45])\d\d[ -]")
# RFC 3463: X.2.2 is "mailbox full", a persistent *transient* failure even with a 5 in front
# (Gmail answers "552-5.2.2 … over quota"); X.7.x is a policy refusal of this message (spam
# filters, "only internal senders"), not a dead address. Both count as soft bounces, and
# repeated on enough issues in a row they suppress the address all the same.
_SOFT_STATUS = re.compile(r"^\d\.(2\.2|7\.\d{1,3})$")
_SOFT_WORDS = re.compile(
    r"mailbox (is )?full|over ?quota|quota exceeded|insufficient (system )?storage|"
    r"inkorgen är full|postlådan är full|greylist",
    re.IGNORECASE,
)
_HARD_WORDS = re.compile(
    r"user unknown|unknown user|no such user|mailbox (does not|doesn't) exist|"
    r"mailbox unavailable|address rejected|recipient not found|does not exist|"
    r"invalid recipient|finns inte",
    re.IGNORECASE,
)
_MAIL_SYSTEM_SENDERS = re.compile(
    r"^(mailer-daemon|postmaster|mail delivery (subsystem|system)|microsoftexchange[0-9a-f]*)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECTS = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed)|"
    r"failure notice|returned mail|mail delivery failed|could not be delivered|"
    r"olevererbar|kunde inte levereras|leveransfel",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECTS = re.compile(
    r"^(frånvaro|automatiskt svar|ej på kontoret|semester|out of (the )?office|"
    r"automatic reply|auto ?reply|auto-reply|autosvar)",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(r"^((re|sv|vs|fw|fwd|vb|aw|wg)\s*:\s*)+", re.IGNORECASE)
_UNSUBSCRIBE_WORDS = re.compile(
    r"avregistrera|avsluta (min |mitt )?prenumeration|unsubscribe|avprenumerera",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{2,400}\.[A-Za-z0-9_-]{2,100})")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Where a reply starts quoting what it answers: the writer's own text is above.
_QUOTE_START = re.compile(
    r"^(>|-+ ?(original message|ursprungligt meddelande|forwarded message|vidarebefordrat)|"
    r"(from|från|skickat|sent|on .* wrote|den .* skrev):)",
    re.IGNORECASE,
)
_DIAGNOSTIC_TYPE = re.compile(r"^\s*smtp\s*;\s*", re.IGNORECASE)
_OWN_TEXT_LENGTH = 1000
_SHORT_REQUEST = 200


@dataclass(frozen=True)
class Context:
    """What is known about the list when a message is read."""

    mailto: str = ""
    """The [unsubscribe] mailto address."""
    secret: bytes | None = None
    """The unsubscribe-link key: checks tokens and Message-ID references."""
    recipient_ids: Mapping[str, str] = field(default_factory=dict)
    """Keyed recipient id → address key (see references.py)."""
    subscribed: frozenset[str] = frozenset()
    """Address keys on the list or sent an issue."""


@dataclass(frozen=True)
class Verdict:
    """What one message is, and whom it is about (lowercase address keys)."""

    kind: Kind
    addresses: tuple[str, ...] = ()
    reason: str = ""
    status: str = ""
    """The RFC 3463 status code of a bounce, e.g. 5.1.1."""
    issue: str = ""
    """The issue named by a signed Message-ID reference in the message."""
    recipient: str = ""
    """The address that reference was sent to."""
    confirmed: bool = False
    """An unsubscribe request from the address itself, or with a valid token."""
    message_id: str = ""
    subject: str = ""
    sender: str = ""
    date: datetime | None = None


def classify(raw: bytes, context: Context) -> Verdict:
    """Read one message, as it came from the mailbox."""
    message = message_from_bytes(raw)
    texts = list(_texts(message))
    issue, recipient = _reference(context, [raw, *(text.encode("utf-8") for text in texts)])
    _name, sender = parseaddr(_text(message.get("From")))
    base = Verdict(
        kind="unknown",
        addresses=_keys([sender]),
        issue=issue,
        recipient=recipient,
        message_id=_one_line(_text(message.get("Message-ID"))),
        subject=_one_line(_text(message.get("Subject"))),
        sender=sender.strip().lower(),
        date=_date(_text(message.get("Date"))),
    )
    report = _delivery_status(message)
    if report is not None:
        return _bounce_from_report(report, base)
    auto = _auto_reply(message, base.subject)
    if _from_mail_system(message, base.subject, auto_reply=bool(auto)):
        bounce = _bounce_from_text(message, texts, base)
        if bounce is not None:
            return bounce
    if auto:
        return replace(
            base, kind="auto-reply", addresses=_keys([recipient or base.sender]), reason=auto
        )
    if _asks_to_unsubscribe(message, texts, base.subject, context.mailto):
        return _unsubscribe(texts, base, context)
    return base


@dataclass(frozen=True)
class _Recipient:
    """One per-recipient block of a delivery status notification."""

    address: str
    action: str
    status: str
    diagnostic: str


def _delivery_status(message: Message) -> list[_Recipient] | None:
    """The per-recipient blocks of the first message/delivery-status part, if there is one."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            return []
        recipients = []
        for block in blocks[1:]:
            if not isinstance(block, Message):
                continue
            address = _dsn_address(block.get("Original-Recipient")) or _dsn_address(
                block.get("Final-Recipient")
            )
            recipients.append(
                _Recipient(
                    address=address,
                    action=_text(block.get("Action")).strip().lower(),
                    status=_status(_text(block.get("Status"))),
                    diagnostic=_DIAGNOSTIC_TYPE.sub(
                        "", _one_line(_text(block.get("Diagnostic-Code")))
                    ),
                )
            )
        return recipients
    return None


def _bounce_from_report(report: list[_Recipient], base: Verdict) -> Verdict:
    failed = [r for r in report if r.action.startswith(("fail", "error"))]
    if not failed:
        delayed = any(r.action.startswith("delay") for r in report)
        reason = (
            _("a delay notice: the receiving server is still trying")
            if delayed
            else _("a delivery report that reports no failure")
        )
        return replace(base, kind="auto-reply", addresses=_keys([base.recipient]), reason=reason)
    first = failed[0]
    status = first.status or _status(first.diagnostic)
    reason = first.diagnostic or (f"status {status}" if status else "delivery failed")
    kind = _severity(status, reason)
    addresses = [r.address for r in failed if _severity(r.status, r.diagnostic) == kind]
    # The signed reference names whom smakom sent to; Final-Recipient may be where a
    # forward led, an address smakom never mailed.
    if base.recipient:
        addresses = [base.recipient]
    return replace(base, kind=kind, addresses=_keys(addresses), reason=reason, status=status)


def _bounce_from_text(message: Message, texts: list[str], base: Verdict) -> Verdict | None:
    """A bounce in one of the older formats, read by flufl.bounce; None when it is not one."""
    temporary, permanent = _flufl_failures(message)
    reason_line = _reason_line(texts)
    status = _status(reason_line)
    kind: Literal["hard", "soft"]
    if permanent or temporary:
        kind = "hard" if permanent else "soft"
        if kind == "hard" and _severity(status, reason_line) == "soft":
            kind = "soft"
        found = sorted(permanent or temporary)
    elif base.recipient and (status or _HARD_WORDS.search(reason_line)):
        # No detector knew the format, but the bounce quotes a message of ours and says why.
        kind = _severity(status, reason_line)
        found = []
    else:
        return None
    addresses = [base.recipient] if base.recipient else found
    reason = reason_line or _("reported as undeliverable, without a reason")
    return replace(base, kind=kind, addresses=_keys(addresses), reason=reason, status=status)


def _flufl_failures(message: Message) -> tuple[list[str], list[str]]:
    """flufl.bounce's temporary and permanent failures, as text addresses."""
    from flufl.bounce import all_failures

    # Its heuristics run on hostile input; none of them may stop the sorting of a mailbox.
    try:
        temporary, permanent = all_failures(message)
    except Exception:
        return [], []
    return _decoded(temporary), _decoded(permanent)


def _decoded(addresses: object) -> list[str]:
    out = []
    for address in addresses if isinstance(addresses, frozenset | set) else ():
        text = address.decode("ascii", "replace") if isinstance(address, bytes) else str(address)
        out.append(text)
    return out


def _severity(status: str, reason: str) -> Literal["hard", "soft"]:
    if status:
        if status.startswith("4") or _SOFT_STATUS.match(status):
            return "soft"
        return "hard"
    if _SOFT_WORDS.search(reason):
        return "soft"
    match = _SMTP_REPLY.search(reason)
    if match and match.group(1) == "4":
        return "soft"
    return "hard"


def _reason_line(texts: list[str]) -> str:
    """The line of a bounce's text that says why: an SMTP reply, a status code or the words."""
    fallback = ""
    for text in texts:
        for line in text.splitlines()[:400]:
            clean = line.strip()
            if _SMTP_REPLY.search(clean) and (_STATUS.search(clean) or len(clean) > 10):
                return _one_line(clean)
            if not fallback and (_HARD_WORDS.search(clean) or _SOFT_WORDS.search(clean)):
                fallback = _one_line(clean)
    return fallback


def _from_mail_system(message: Message, subject: str, *, auto_reply: bool) -> bool:
    """Sent by a mail system, not a person's auto-responder.

    MAILER-DAEMON or postmaster is a mail system even when it marks its bounce Auto-Submitted
    (Exim does). An empty Return-Path or a subject like "Undeliverable" is one only without
    auto-reply signs: RFC 3834 asks auto-responders, too, for an empty Return-Path.
    """
    name, address = parseaddr(_text(message.get("From")))
    if _MAIL_SYSTEM_SENDERS.match(address) or _MAIL_SYSTEM_SENDERS.match(name):
        return True
    return_path = _text(message.get("Return-Path")).strip()
    return not auto_reply and (return_path == "<>" or bool(_BOUNCE_SUBJECTS.search(subject)))


def _auto_reply(message: Message, subject: str) -> str:
    """Why the message is an auto-reply ("" when it is not)."""
    submitted = _text(message.get("Auto-Submitted")).strip().lower()
    if submitted and not submitted.startswith("no"):
        return f"Auto-Submitted: {submitted}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if message.get(header) is not None:
            return f"{header}: {_one_line(_text(message.get(header)))}"
    precedence = _text(message.get("Precedence")).strip().lower()
    if precedence in ("auto_reply", "bulk", "junk"):
        return f"Precedence: {precedence}"
    if _AUTO_REPLY_SUBJECTS.match(_REPLY_PREFIX.sub("", subject).strip()):
        return f"the subject: {subject}"
    return ""


def _asks_to_unsubscribe(message: Message, texts: list[str], subject: str, mailto: str) -> bool:
    """The words in the subject; or in the writer's own text, when it went to the mailto
    address or is a line or two ("Avregistrera mig, tack"), not a letter that mentions them.
    """
    if _UNSUBSCRIBE_WORDS.search(subject):
        return True
    own = _own_text(texts[0]) if texts else ""
    if not _UNSUBSCRIBE_WORDS.search(own):
        return False
    recipients = {a.lower() for _, a in getaddresses(message.get_all("To", []))}
    recipients |= {a.lower() for _, a in getaddresses(message.get_all("Delivered-To", []))}
    return bool(mailto and mailto.lower() in recipients) or len(own.strip()) <= _SHORT_REQUEST


def _unsubscribe(texts: list[str], base: Verdict, context: Context) -> Verdict:
    """Whom the request is for, and whether it may be acted on without asking a person."""
    subject = base.subject
    sender = base.sender
    tokens = _token_addresses(texts, context.secret)
    named = _keys(
        _ADDRESS.findall(subject) + _ADDRESS.findall(_own_text(texts[0] if texts else ""))
    )
    named = tuple(a for a in named if a != (context.mailto or "").lower())
    if named:
        proven = set(tokens) | {sender}
        confirmed = all(address in proven for address in named)
        addresses = named
        doubt = _("asks for {join} but comes from {sender}").format(
            join=", ".join(named), sender=sender
        )
    elif tokens:
        confirmed, addresses, doubt = True, tokens, ""
    else:
        confirmed, addresses = sender in context.subscribed, _keys([sender])
        doubt = _("comes from {sender}, which is not on the list").format(sender=sender)
    if confirmed:
        reason = (
            _("asked by mail: {subject}").format(subject=subject) if subject else _("asked by mail")
        )
    else:
        reason = _("{doubt}, without a valid unsubscribe link: a person should check it").format(
            doubt=doubt
        )
    return replace(
        base,
        kind="unsubscribe",
        addresses=addresses,
        reason=_one_line(reason),
        confirmed=confirmed,
    )


def _token_addresses(texts: list[str], secret: bytes | None) -> tuple[str, ...]:
    if secret is None:
        return ()
    found = []
    for text in texts:
        for token in _TOKEN.findall(text):
            try:
                found.append(address_from_token(secret, token))
            except (SmakomError, UnicodeDecodeError):
                continue
    return _keys(found)


def _own_text(text: str) -> str:
    """The writer's own words at the top of a reply, without what it quotes."""
    lines = []
    for line in text.splitlines():
        if _QUOTE_START.match(line.strip()):
            break
        lines.append(line)
    return "\n".join(lines)[:_OWN_TEXT_LENGTH]


def _reference(context: Context, texts: list[bytes]) -> tuple[str, str]:
    """The issue and recipient of the first signed reference whose recipient is known."""
    if context.secret is None:
        return "", ""
    for reference in find_references(context.secret, texts):
        key = context.recipient_ids.get(reference.recipient_id)
        if key:
            return reference.issue, key
    return "", ""


def _date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return when


def _texts(message: Message) -> Iterator[str]:
    """The decoded text of every text part (also those of a returned message), top first."""
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            yield payload.decode(charset, "replace")
        except LookupError:
            yield payload.decode("utf-8", "replace")


def _text(value: object) -> str:
    """A header's value as text, RFC 2047 words decoded; never raises on damaged input."""
    if value is None:
        return ""
    raw = str(value)
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError, AssertionError):
        return raw


def _dsn_address(value: object) -> str:
    """The address of `rfc822; anna@kommun.se`; "" for another address type."""
    text = _text(value)
    kind, _semicolon, address = text.partition(";")
    if kind.strip().lower() != "rfc822":
        return ""
    return parseaddr(address.strip())[1] or address.strip()


def _status(text: str) -> str:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def _one_line(text: str) -> str:
    clean = " ".join(text.split())
    return clean[:_REASON_LENGTH]


def _keys(addresses: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Lowercase addresses without repeats, in order; what is not an address is left out."""
    keys: list[str] = []
    for address in addresses:
        key = address.strip().strip("<>").lower()
        if "@" in key and key not in keys and len(key) <= 254:
            keys.append(key)
    return tuple(keys)
