"""What one message in the office's mailbox is: a bounce, a block of the sending, a spam
complaint, an unsubscribe request, an auto-reply, a person's mail, or unreadable.

Pure: the raw bytes and what is known about the list in, a `Verdict` out; nothing is read
or written. Any bytes give a verdict, within bounds: a message nested deeper, or in more
parts, than any real mail is `unreadable` without being parsed further, and so is one the
parser chokes on; `smakom inbox` moves it to its own folder for a person, and goes on.

The order of the questions matters:
1. a spam complaint (an ARF feedback report, RFC 5965) is the reader's "stop";
2. a delivery status notification (RFC 3464, `multipart/report`) is a bounce, even though
   Postfix and others mark them `Auto-Submitted: auto-replied`, unless it refuses the
   sending server itself (a block list, its reputation, 5.7.708): then it is `blocked`,
   which says nothing about the reader's address;
3. a message from a mail system (`MAILER-DAEMON`, an empty Return-Path) is read by
   flufl.bounce's detectors for the bounce formats that predate RFC 3464 (qmail, Exim, …);
4. an auto-reply (RFC 3834 headers, Microsoft's and others', out-of-office subjects) is
   never a bounce and never an unsubscribe (listmonk counted them as bounces, its #1334);
5. a message to the `[unsubscribe] mailto` address is a request when its words do not say
   otherwise (`requests.read_request`); words in a reply to any other address never are;
6. anything else is a person's mail.

Headers are read as sent: raw 8-bit bytes (older servers send them) as UTF-8, else as
Windows-1252, and RFC 2047 words decoded, never turned into U+FFFD.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html import unescape
from typing import Literal

from smakom_cli.audience.references import find_references
from smakom_cli.audience.unsubscribe_links import address_from_token
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.returns.requests import read_request

Kind = Literal[
    "hard",
    "soft",
    "blocked",
    "complaint",
    "unsubscribe",
    "auto-reply",
    "unreadable",
    "unknown",
]

# The bounds of reading one message. A bounce, a complaint or a request is a few kilobytes,
# in at most four levels of parts; a reply with a forwarded thread and attachments a few
# dozen parts. Beyond these the stdlib's recursive parser would run out of stack (a 32 KB
# message nested 1,000 deep does) or take seconds.
MAX_BYTES = 1 << 20
MAX_DEPTH = 16
MAX_PARTS = 300
# Counted in the raw bytes before parsing: declared containers (each level of nesting needs
# one) and lines that may open a part.
_MAX_CONTAINERS = 2 * MAX_DEPTH + MAX_PARTS
_MAX_BOUNDARY_LINES = 4 * MAX_PARTS
_MAX_HEADER_CHARS = 4000
_MAX_TEXT_CHARS = 200_000

_CONTAINER = re.compile(rb"^content-type:\s*(multipart|message)/", re.IGNORECASE | re.MULTILINE)
_BOUNDARY_LINE = re.compile(rb"^--", re.MULTILINE)
_REASON_LENGTH = 300
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_SMTP_REPLY = re.compile(r"(?<!\d)([45])\d\d(?:[ :-]|$)")
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
    r"invalid recipient|finns inte|no mailbox|doesn't have an? .{1,40} account|"
    r"account (is )?(disabled|deactivated)",
    re.IGNORECASE,
)
# Refusals of the sending server or domain, not of the reader's mailbox: Microsoft's
# 5.7.708 ("traffic not accepted from this IP") and 5.7.750 (unregistered domain), 5.7.606
# and 5.7.511 (banned IP, sender), 4.7.650-652 (IP reputation), Gmail's 5.7.25-28 (reverse
# DNS, DMARC, SPF, bulk rate), and any answer naming a block list.
_BLOCKED_STATUS = frozenset(
    (
        "5.7.708",
        "5.7.750",
        "5.7.606",
        "5.7.511",
        "4.7.650",
        "4.7.651",
        "4.7.652",
        "5.7.25",
        "5.7.26",
        "5.7.27",
        "5.7.28",
        "4.7.25",
        "4.7.26",
        "4.7.27",
        "4.7.28",
    )
)
_BLOCKED_WORDS = re.compile(
    r"blocked using|block ?list|black ?list|deny ?list|\blisted (at|in|on|by)\b|spamhaus|"
    r"spamcop|barracuda|\bsorbs\b|\bsurbl\b|\brbl\b|\bdnsbl\b|\breputation\b|"
    r"not accepted from this ip|client host .{0,80}(blocked|rejected)|banned sending ip|"
    r"unregistered domain|unusual rate|unsolicited mail originating|"
    r"unauthenticated (e-?mail|sender)|\bdmarc\b|\bspf\b|reverse dns|\bptr record|"
    r"sender address rejected",
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
    r"^(frånvaro|automatiskt svar|automatiskt meddelande|autosvar|ej på kontoret|"
    r"inte på kontoret|semester|ledig\b|tjänstledig|föräldraledig|out of (the )?office|"
    r"automatic reply|auto ?reply|auto-reply|auto-response|autoresponse|auto:|"
    r"away from (the )?office|on vacation|vacation reply)",
    re.IGNORECASE,
)
_AUTO_REPLY_HEADERS = (
    "X-Autoreply",
    "X-Autorespond",
    "X-Auto-Response-Suppress",
    "X-Autogenerated",
)
_REPLY_PREFIX = re.compile(r"^((re|sv|vs|fw|fwd|vb|aw|wg)\s*:\s*)+", re.IGNORECASE)
_MENTIONS_UNSUBSCRIBE = re.compile(
    r"avregistrer|avprenumerer|avsluta\w* (min |mitt )?prenumeration|unsubscri|"
    r"ta bort mig|remove me",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{2,400}\.[A-Za-z0-9_-]{2,100})")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Where a reply starts quoting what it answers: the writer's own text is above.
_QUOTE_START = re.compile(
    r"^(>|-- ?$|_{5,}|-+ ?(original message|ursprungligt meddelande|forwarded message|"
    r"vidarebefordrat)|(from|från|skickat|sent|on .* wrote|den .* skrev):)",
    re.IGNORECASE,
)
# Where a text bounce starts its copy of the returned message.
_COPY_START = re.compile(
    r"below this line is a copy|this is a copy of|original message follows|"
    r"original message headers|returned message|^-+ ?original message",
    re.IGNORECASE,
)
_DIAGNOSTIC_TYPE = re.compile(r"^\s*(smtp|x-[a-z0-9-]+)\s*;\s*", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(\s[^<>]{0,300})?/?>")
_HTML_TOKEN = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)(?:\s[^<>]{0,300})?/?>|<![^<>]{0,300}>")
_HIDDEN_TAGS = frozenset(("script", "style", "head", "title"))
_BLOCK_TAGS = frozenset(("br", "p", "div", "tr", "li", "h1", "h2", "h3", "table", "td"))
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,40})\?([QqBb])\?([^?\s]{0,2000})\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?)")
_OWN_TEXT_LENGTH = 1000


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
    mentions_unsubscribe: bool = False
    """A person's mail whose words are about unsubscribing (never acted on)."""
    message_id: str = ""
    subject: str = ""
    sender: str = ""
    date: datetime | None = None


class _TooComplex(Exception):
    """The message is beyond the bounds of reading one message."""


def classify(raw: bytes, context: Context) -> Verdict:
    """Read one message, as it came from the mailbox; never raises."""
    raw = raw[:MAX_BYTES]
    try:
        _check_shape(raw)
        message = message_from_bytes(raw)
        parts = _parts(message)
    except _TooComplex as exc:
        return _unreadable(raw, str(exc))
    except (RecursionError, MemoryError):
        return _unreadable(raw, _("its structure is too deep to read"))
    try:
        return _classify(message, parts, raw, context)
    except Exception as exc:  # one odd message must not stop the sorting
        return _unreadable(
            raw, _("it could not be read ({error})").format(error=type(exc).__name__)
        )


def _classify(message: Message, parts: list[Message], raw: bytes, context: Context) -> Verdict:
    texts = list(_texts(parts))
    issue, recipient = _reference(context, [raw, *(text.encode("utf-8") for text in texts)])
    _name, sender = parseaddr(_header(message, "From"))
    base = Verdict(
        kind="unknown",
        addresses=_keys([sender]),
        issue=issue,
        recipient=recipient,
        message_id=_one_line(_header(message, "Message-ID")),
        subject=_one_line(_header(message, "Subject")),
        sender=_key(sender),
        date=_date(_header(message, "Date")),
    )
    complaint = _complaint(parts, base)
    if complaint is not None:
        return complaint
    report = _delivery_status(parts)
    if report is not None:
        return _bounce_from_report(report, texts, base)
    auto = _auto_reply(message, base.subject)
    if _from_mail_system(message, base.subject, auto_reply=bool(auto)):
        bounce = _bounce_from_text(message, texts, base)
        if bounce is not None:
            return bounce
    if auto:
        return replace(
            base, kind="auto-reply", addresses=_keys([recipient or base.sender]), reason=auto
        )
    own = _own_text(texts[0]) if texts else ""
    if context.mailto and _addressed_to(message, context.mailto):
        reading = read_request(base.subject, own)
        if reading.leave:
            return _unsubscribe(texts, base, context)
        return replace(base, reason=reading.why, mentions_unsubscribe=True)
    if _MENTIONS_UNSUBSCRIBE.search(base.subject) or _MENTIONS_UNSUBSCRIBE.search(own):
        to = ", ".join(_recipients(message, ("To",))) or "another address"
        return replace(
            base,
            mentions_unsubscribe=True,
            reason=_(
                "mentions unsubscribing, written to {to}, not the unsubscribe address: "
                "a person should read it"
            ).format(to=to),
        )
    return base


def _check_shape(raw: bytes) -> None:
    """Refuse, before parsing, what no real mail looks like and the parser cannot bound."""
    if len(_CONTAINER.findall(raw, 0, MAX_BYTES)) > _MAX_CONTAINERS:
        raise _TooComplex(
            _("it declares more than {count} nested or attached messages").format(
                count=_MAX_CONTAINERS
            )
        )
    if len(_BOUNDARY_LINE.findall(raw)) > _MAX_BOUNDARY_LINES:
        raise _TooComplex(_("it has more than {count} parts").format(count=MAX_PARTS))


def _parts(message: Message) -> list[Message]:
    """Every part, top first, without recursion; beyond the bounds, `_TooComplex`."""
    found: list[Message] = []
    stack = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _TooComplex(
                _("its parts are nested more than {count} deep").format(count=MAX_DEPTH)
            )
        found.append(part)
        if len(found) > MAX_PARTS:
            raise _TooComplex(_("it has more than {count} parts").format(count=MAX_PARTS))
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((p, depth + 1) for p in reversed(payload) if isinstance(p, Message))
    return found


def _unreadable(raw: bytes, why: str) -> Verdict:
    """What a person needs to find the message: its sender, date, subject and Message-ID."""
    head = raw[: min(len(raw), 65536)].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    fields: dict[str, str] = {}
    for line in re.sub(rb"\r?\n[ \t]+", b" ", head).splitlines()[:1000]:
        name, colon, value = line.partition(b":")
        key = name.strip().lower().decode("ascii", "replace")
        if colon and key in ("from", "subject", "date", "message-id") and key not in fields:
            fields[key] = _decode_header(value.strip()[:_MAX_HEADER_CHARS])
    _name, sender = parseaddr(fields.get("from", ""))
    return Verdict(
        kind="unreadable",
        addresses=_keys([sender]),
        reason=_("unreadable: {why}; moved for a person to look at").format(why=why),
        message_id=_one_line(fields.get("message-id", "")),
        subject=_one_line(fields.get("subject", "")),
        sender=_key(sender),
        date=_date(fields.get("date", "")),
    )


@dataclass(frozen=True)
class _Recipient:
    """One per-recipient block of a delivery status notification."""

    address: str
    action: str
    status: str
    diagnostic: str


def _delivery_status(parts: list[Message]) -> list[_Recipient] | None:
    """The per-recipient blocks of the first message/delivery-status part, if there is one."""
    for part in parts:
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            return []
        recipients = []
        for block in blocks[1:]:
            if not isinstance(block, Message):
                continue
            address = _dsn_address(_header(block, "Original-Recipient")) or _dsn_address(
                _header(block, "Final-Recipient")
            )
            recipients.append(
                _Recipient(
                    address=address,
                    action=_header(block, "Action").strip().lower(),
                    status=_status(_header(block, "Status")),
                    diagnostic=_plain(
                        _DIAGNOSTIC_TYPE.sub("", _header(block, "Diagnostic-Code").strip())
                    ),
                )
            )
        return recipients
    return None


def _bounce_from_report(report: list[_Recipient], texts: list[str], base: Verdict) -> Verdict:
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
    # The human part says why when the report's Diagnostic-Code does not (Microsoft's
    # HTML-only NDRs): its first line with a reply code, status code or the words.
    human = "" if first.diagnostic else _reason_line(texts[:1])
    status = first.status or _status(first.diagnostic) or _status(human)
    reason = first.diagnostic or human or (f"status {status}" if status else "delivery failed")
    addresses = [r.address for r in failed]
    # The signed reference names whom smakom sent to; Final-Recipient may be where a
    # forward led, an address smakom never mailed.
    if base.recipient:
        addresses = [base.recipient]
    if _blocked(status, reason):
        return replace(
            base, kind="blocked", addresses=_keys(addresses), reason=reason, status=status
        )
    kind = _severity(status, reason)
    if not base.recipient:
        addresses = [r.address for r in failed if _severity(r.status, r.diagnostic) == kind]
    return replace(base, kind=kind, addresses=_keys(addresses), reason=reason, status=status)


def _bounce_from_text(message: Message, texts: list[str], base: Verdict) -> Verdict | None:
    """A bounce in one of the older formats, read by flufl.bounce; None when it is not one."""
    temporary, permanent = _flufl_failures(message)
    reason_line = _reason_line(texts)
    status = _status(reason_line)
    kind: Literal["hard", "soft", "blocked"]
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
    if _blocked(status, reason_line):
        kind = "blocked"
    addresses = [base.recipient] if base.recipient else found
    reason = reason_line or _("reported as undeliverable, without a reason")
    return replace(base, kind=kind, addresses=_keys(addresses), reason=reason, status=status)


def _complaint(parts: list[Message], base: Verdict) -> Verdict | None:
    """A spam complaint (ARF, RFC 5965), naming the reader; None when it is not a report."""
    report = next((p for p in parts if p.get_content_type() == "message/feedback-report"), None)
    if report is None:
        return None
    fields = _report_fields(report)
    feedback = fields.get("feedback-type", "").strip().lower()
    if feedback != "abuse":
        return replace(
            base,
            reason=_("a feedback report of type '{type}': a person should read it").format(
                type=feedback or "?"
            ),
        )
    named = [a for _name, a in getaddresses([fields.get("original-rcpt-to", "")]) if a]
    if not named:
        original = next(
            (p for p in parts if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")),
            None,
        )
        named = _original_recipients(original)
    addresses = [base.recipient] if base.recipient else named
    source = fields.get("user-agent") or fields.get("reporting-mta") or base.sender
    reason = _("marked as spam by the reader (a complaint through {source})").format(
        source=_one_line(source)
    )
    return replace(base, kind="complaint", addresses=_keys(addresses), reason=reason)


def _report_fields(part: Message) -> dict[str, str]:
    """The fields of a feedback report, whether the parser made it a message or text."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return {k.lower(): _decode_raw(v) for k, v in list(payload[0].raw_items())[:200]}
    text = payload if isinstance(payload, str) else ""
    fields: dict[str, str] = {}
    for line in text.splitlines()[:200]:
        name, colon, value = line.partition(":")
        if colon:
            fields.setdefault(name.strip().lower(), value.strip())
    return fields


def _original_recipients(part: Message | None) -> list[str]:
    if part is None:
        return []
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return _recipients(payload[0], ("To",))
    if isinstance(payload, str):
        to = re.search(r"^to:(.*)$", payload[:65536], re.IGNORECASE | re.MULTILINE)
        return [a for _name, a in getaddresses([to.group(1)])] if to else []
    return []


def _flufl_failures(message: Message) -> tuple[list[str], list[str]]:
    """flufl.bounce's temporary and permanent failures, as text addresses."""
    from flufl.bounce import all_failures

    # Its heuristics run on hostile input; none of them may stop the sorting of a mailbox.
    try:
        with _quiet(logging.getLogger("flufl.bounce")):
            temporary, permanent = all_failures(message)
    except Exception:  # a detector's bug is a message it does not know
        return [], []
    return _decoded(temporary), _decoded(permanent)


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """flufl.bounce logs a detector's exception with its traceback before raising it; with
    no handler configured Python would print that to the terminal."""
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled


def _decoded(addresses: object) -> list[str]:
    out = []
    for address in addresses if isinstance(addresses, frozenset | set) else ():
        text = address.decode("ascii", "replace") if isinstance(address, bytes) else str(address)
        out.append(text)
    return out


def _blocked(status: str, reason: str) -> bool:
    """The refusal is of the sending server or domain, not of the reader's address."""
    return status in _BLOCKED_STATUS or bool(_BLOCKED_WORDS.search(reason))


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
    """The line of a bounce's text that says why: an SMTP reply, a status code or the words.

    Read only above the bounce's copy of the returned message, so the newsletter's own
    text never becomes the reason.
    """
    with_status = words = ""
    for text in texts:
        for line in text.splitlines()[:400]:
            clean = line.strip()
            if _COPY_START.search(clean):
                break
            if _SMTP_REPLY.search(clean) and (_STATUS.search(clean) or len(clean) > 10):
                return _one_line(clean)
            if not with_status and _STATUS.search(clean):
                with_status = _one_line(clean)
            if not words and (_HARD_WORDS.search(clean) or _SOFT_WORDS.search(clean)):
                words = _one_line(clean)
    return with_status or words


def _from_mail_system(message: Message, subject: str, *, auto_reply: bool) -> bool:
    """Sent by a mail system, not a person's auto-responder.

    MAILER-DAEMON or postmaster is a mail system even when it marks its bounce Auto-Submitted
    (Exim does). An empty Return-Path or a subject like "Undeliverable" is one only without
    auto-reply signs: RFC 3834 asks auto-responders, too, for an empty Return-Path.
    """
    name, address = parseaddr(_header(message, "From"))
    if _MAIL_SYSTEM_SENDERS.match(address) or _MAIL_SYSTEM_SENDERS.match(name):
        return True
    return_path = _header(message, "Return-Path").strip()
    return not auto_reply and (return_path == "<>" or bool(_BOUNCE_SUBJECTS.search(subject)))


def _auto_reply(message: Message, subject: str) -> str:
    """Why the message is an auto-reply ("" when it is not)."""
    submitted = _header(message, "Auto-Submitted").strip().lower()
    if submitted and not submitted.startswith("no"):
        return f"Auto-Submitted: {_one_line(submitted)}"
    for name in _AUTO_REPLY_HEADERS:
        if message.get(name) is not None:
            return f"{name}: {_one_line(_header(message, name))}"
    precedence = _header(message, "Precedence").strip().lower()
    if precedence in ("auto_reply", "bulk", "junk"):
        return f"Precedence: {precedence}"
    if _AUTO_REPLY_SUBJECTS.match(_REPLY_PREFIX.sub("", subject).strip()):
        return f"the subject: {subject}"
    return ""


def _addressed_to(message: Message, mailto: str) -> bool:
    """Sent to this address: To, Cc, or where the receiving server delivered it."""
    names = ("To", "Cc", "Delivered-To", "X-Original-To")
    return mailto.strip().lower() in _recipients(message, names)


def _recipients(message: Message, names: tuple[str, ...]) -> list[str]:
    values = [_decode_raw(v) for k, v in message.raw_items() if k.lower() in _lower(names)]
    return [_key(a) for _name, a in getaddresses(values[:50]) if a]


def _lower(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(n.lower() for n in names)


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


def _texts(parts: list[Message]) -> Iterator[str]:
    """The decoded text of every text part (also those of a returned message), top first;
    HTML as the text a reader sees."""
    for part in parts:
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = _body_text(payload[: _MAX_TEXT_CHARS * 2], part.get_content_charset())
        yield _html_text(text) if part.get_content_subtype() == "html" else text


def _body_text(payload: bytes, charset: str | None) -> str:
    if charset and charset not in ("us-ascii", "ascii"):
        try:
            return payload.decode(charset)[:_MAX_TEXT_CHARS]
        except (LookupError, UnicodeDecodeError):
            pass
    return _bytes_text(payload)[:_MAX_TEXT_CHARS]


def _html_text(html: str) -> str:
    """What a reader of an HTML part sees, a line per block, without scripts and styles.

    One linear pass over the tags: the standard library's HTMLParser takes minutes on a
    megabyte of unclosed tags.
    """
    chunks: list[str] = []
    hidden = ""
    position = 0
    for match in _HTML_TOKEN.finditer(html):
        if not hidden:
            chunks.append(html[position : match.start()])
        position = match.end()
        closing, name = match.group(1), (match.group(2) or "").lower()
        if hidden:
            if closing and name == hidden:
                hidden = ""
        elif name in _HIDDEN_TAGS and not closing:
            hidden = name
        elif name in _BLOCK_TAGS:
            chunks.append("\n")
    if not hidden:
        chunks.append(html[position:])
    lines = (" ".join(line.split()) for line in unescape("".join(chunks)).splitlines())
    return "\n".join(line for line in lines if line)


def _plain(text: str) -> str:
    """A reason as plain text: tags (HTML in a Diagnostic-Code) and entities gone."""
    return _one_line(unescape(_TAG.sub(" ", text)))


def _header(message: Message, name: str) -> str:
    """The first value of a header as sent, decoded (see `_decode_raw`); "" when missing."""
    lower = name.lower()
    for key, value in message.raw_items():
        if key.lower() == lower:
            return _decode_raw(value)
    return ""


def _decode_raw(value: object) -> str:
    """A header's value as text: raw 8-bit bytes as UTF-8 else Windows-1252, RFC 2047 words
    decoded; never raises on damaged input."""
    if not isinstance(value, str):
        return ""
    data = value[:_MAX_HEADER_CHARS].encode("utf-8", "surrogateescape")
    return _decode_header(data)


def _decode_header(data: bytes) -> str:
    return _ENCODED_WORD.sub(_decode_word, _BETWEEN_WORDS.sub("", _bytes_text(data)))


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, text = match.groups()
    try:
        if encoding in "Bb":
            data = base64.b64decode(text + "=" * (-len(text) % 4))
        else:
            data = binascii.a2b_qp(text.encode("utf-8"), header=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    try:
        return data.decode(charset.partition("*")[0])
    except (LookupError, UnicodeDecodeError):
        return _bytes_text(data)


def _bytes_text(data: bytes) -> str:
    """UTF-8 when it is valid UTF-8, else Windows-1252 (what Outlook and Latin-1 servers send)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _dsn_address(text: str) -> str:
    """The address of `rfc822; anna@kommun.se`; "" for another address type."""
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


def _key(address: str) -> str:
    return address.strip().strip("<>").lower()


def _keys(addresses: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Lowercase addresses without repeats, in order; what is not an address is left out."""
    keys: list[str] = []
    for address in addresses:
        key = _key(address)
        if "@" in key and key not in keys and len(key) <= 254:
            keys.append(key)
    return tuple(keys)
