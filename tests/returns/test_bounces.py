"""What each kind of returned mail is taken to be: bounces, auto-replies, unsubscribe requests."""

from __future__ import annotations

import re
import time
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smakom_cli.audience.references import find_references, ids_for, message_id, recipient_id
from smakom_cli.returns.bounces import MAX_DEPTH, MAX_PARTS, Context, Verdict, classify
from tests.conftest import EXAMPLES, FIXTURES

BOUNCES = FIXTURES / "bounces"
# The key the fixtures' Message-ID references and unsubscribe tokens were made with.
SECRET = b"smakom-inbox-test-key-0123456789abcdef"


def _subscribers() -> frozenset[str]:
    lines = (EXAMPLES / "subscribers.csv").read_text(encoding="utf-8").splitlines()[1:]
    return frozenset(line.split(";")[0].strip().lower() for line in lines if "@" in line)


CONTEXT = Context(
    mailto="avregistrera@smakom.se",
    secret=SECRET,
    recipient_ids=ids_for(SECRET, _subscribers()),
    subscribed=_subscribers(),
)


def verdict(name: str, context: Context = CONTEXT) -> Verdict:
    return classify((BOUNCES / name).read_bytes(), context)


@pytest.mark.parametrize(
    ("name", "address", "status"),
    [
        ("exchange-online-ndr.eml", "anna.aberg@example.com", "5.1.10"),
        ("gmail-dsn.eml", "bjorn.ostlund@example.org", "5.1.1"),
        ("postfix-dsn.eml", "cecilia.arlig@example.com", "5.1.1"),
        ("exim-bounce.eml", "david.sjostrom@example.org", "5.1.1"),
        ("qmail-bounce.eml", "eva.lindqvist@example.com", "5.1.1"),
        ("headers-only-bounce.eml", "fredrik.hakansson@example.org", "5.1.1"),
    ],
)
def test_permanent_failures_are_hard_bounces(name: str, address: str, status: str) -> None:
    """Exchange, Gmail, Postfix, Exim and qmail bounces name the address and the reason."""
    result = verdict(name)
    assert result.kind == "hard"
    assert result.addresses == (address,)
    assert result.status == status
    assert status in result.reason
    assert result.issue == "2021-01"


@pytest.mark.parametrize(
    ("name", "address", "status", "reason"),
    [
        ("yahoo-bounce.eml", "rolf.sjogren@example.org", "", "554: delivery error: dd This user"),
        ("qmail-local-bounce.eml", "sara.hagglund@example.com", "5.1.1", "no mailbox here"),
        ("exchange-html-ndr.eml", "tomas.narhi@example.org", "5.1.10", "Remote Server returned"),
    ],
)
def test_a_bounce_s_reason_is_its_plain_text(
    name: str, address: str, status: str, reason: str
) -> None:
    """Yahoo's and qmail's text bounces and an HTML-only NDR give the reason, without tags."""
    result = verdict(name)
    assert (result.kind, result.addresses, result.status) == ("hard", (address,), status)
    assert result.reason.startswith(reason) or reason in result.reason
    assert "<" not in result.reason and "&#" not in result.reason
    assert "without a reason" not in result.reason and "nothing here counts" not in result.reason


def test_a_spam_complaint_names_the_reader_by_the_signed_message_id() -> None:
    """An ARF report (RFC 5965) whose copy has a redacted To is the reader's complaint."""
    result = verdict("arf-complaint.eml")
    assert (result.kind, result.addresses, result.issue) == (
        "complaint",
        ("per.akesson@example.org",),
        "2021-01",
    )
    assert "Hotmail FBL" in result.reason


def test_a_complaint_without_a_reference_names_the_original_recipient() -> None:
    """Without the key, Original-Rcpt-To (or the copy's To) names the reader."""
    raw = (BOUNCES / "arf-complaint.eml").read_bytes()
    raw = raw.replace(
        b"Version: 1\r\n", b"Version: 1\r\nOriginal-Rcpt-To: per.akesson@example.org\r\n"
    )
    result = classify(raw, Context(mailto=CONTEXT.mailto))
    assert (result.kind, result.addresses) == ("complaint", ("per.akesson@example.org",))


def test_a_feedback_report_that_is_no_complaint_is_for_a_person() -> None:
    """Feedback-Type: not-spam (or virus, fraud) unsubscribes nobody."""
    raw = (BOUNCES / "arf-complaint.eml").read_bytes().replace(b"abuse", b"not-spam")
    assert classify(raw, CONTEXT).kind == "unknown"


@pytest.mark.parametrize(
    "diagnostic",
    [
        b"550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
        b"550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains",
        b"554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org",
        b"550-5.7.26 Unauthenticated email from smakom.se is not accepted due to DMARC policy",
        b"550 5.0.0 Your IP 192.0.2.10 is listed at bl.spamcop.net",
    ],
)
def test_a_refusal_of_the_sending_server_is_no_bounce_of_the_reader(diagnostic: bytes) -> None:
    """Microsoft's 5.7.708 and 5.7.750, block lists and DMARC say nothing of the address."""
    raw = (BOUNCES / "exchange-blocked-ndr.eml").read_bytes()
    raw = re.sub(rb"Diagnostic-Code: smtp;[^\r]*", b"Diagnostic-Code: smtp;" + diagnostic, raw)
    raw = re.sub(rb"Status: 5.7.708", b"Status: " + diagnostic.split()[1][:7].rstrip(b"-"), raw)
    result = classify(raw, CONTEXT)
    assert (result.kind, result.addresses) == ("blocked", ("qarin.ek@example.com",))


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("out-of-office-latin1.eml", "Frånvaro: SmåKom Nyhetsbrev Januari 2021"),
        ("out-of-office-utf8-raw.eml", "Autosvar: SmåKom Nyhetsbrev Januari 2021"),
    ],
)
def test_raw_8bit_subjects_are_read_as_sent(name: str, subject: str) -> None:
    """A subject in raw Latin-1 or UTF-8 bytes is decoded and recognised as an auto-reply."""
    result = verdict(name)
    assert (result.kind, result.subject) == ("auto-reply", subject)
    assert "\ufffd" not in result.reason


def test_a_bounce_quoting_only_headers_is_matched_by_the_signed_message_id() -> None:
    """A gateway that names an internal address still leads back to the subscriber mailed."""
    result = verdict("headers-only-bounce.eml")
    assert result.recipient == "fredrik.hakansson@example.org"
    assert "intern.vilhelmina.local" not in " ".join(result.addresses)
    without_key = verdict("headers-only-bounce.eml", Context(mailto=CONTEXT.mailto))
    assert without_key.addresses != ("fredrik.hakansson@example.org",)


def test_a_full_mailbox_is_a_soft_bounce_even_with_a_5() -> None:
    """552 5.2.2 'over quota' is temporary by RFC 3463: counted, not suppressed at once."""
    result = verdict("soft-mailbox-full.eml")
    assert result.kind == "soft"
    assert result.addresses == ("gunilla.nystrom@example.com",)
    assert "over quota" in result.reason


@pytest.mark.parametrize("name", ["out-of-office-sv.eml", "out-of-office-en.eml"])
def test_out_of_office_replies_are_auto_replies(name: str) -> None:
    """Swedish and English out-of-office answers are auto-replies, never bounces."""
    assert verdict(name).kind == "auto-reply"


def test_a_bounce_marked_auto_submitted_is_still_a_bounce() -> None:
    """Postfix marks its bounces Auto-Submitted; they are bounces all the same."""
    raw = (BOUNCES / "postfix-dsn.eml").read_bytes()
    assert b"Auto-Submitted: auto-replied" in raw
    assert classify(raw, CONTEXT).kind == "hard"


def test_an_out_of_office_with_an_empty_return_path_is_not_a_bounce() -> None:
    """RFC 3834 auto-replies come from <> too; one saying an account "finns inte" is no bounce."""
    raw = (BOUNCES / "out-of-office-sv.eml").read_bytes()
    raw = b"Return-Path: <>\r\n" + raw.replace(
        b"Jag \xc3\xa4r p\xc3\xa5 semester",
        b"Mitt gamla konto finns inte, jag \xc3\xa4r p\xc3\xa5 semester",
    )
    assert b"finns inte" in raw
    assert classify(raw, CONTEXT).kind == "auto-reply"


def _mail(subject: str, body: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Anna <anna.aberg@example.com>")
    message["To"] = headers.pop("To", "nyhetsbrev@smakom.se")
    message["Subject"] = subject
    message["Message-ID"] = "<m1@example.com>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


@pytest.mark.parametrize(
    ("headers", "subject"),
    [
        ({"Auto_Submitted": "auto-replied"}, "Re: nyhetsbrev"),
        ({"X_Autoreply": "yes"}, "Re: nyhetsbrev"),
        ({"X_Autorespond": "yes"}, "Re: nyhetsbrev"),
        ({"Precedence": "auto_reply"}, "Re: nyhetsbrev"),
        ({}, "Frånvaro vecka 28"),
        ({}, "Ej på kontoret"),
        ({}, "SV: Semester till 1 augusti"),
        ({}, "Automatic reply: SmåKom"),
        ({}, "Autoreply"),
        ({}, "Autosvar: Nyhetsbrev"),
        ({}, "Automatiskt svar: Nyhetsbrev"),
        ({}, "Out of office: back on Monday"),
        ({"X_Autogenerated": "Reply"}, "Re: nyhetsbrev"),
    ],
)
def test_every_auto_reply_sign_is_recognised(headers: dict[str, str], subject: str) -> None:
    """RFC 3834 and vendor headers, and out-of-office subjects, each make an auto-reply."""
    assert classify(_mail(subject, "Jag är borta.", **headers), CONTEXT).kind == "auto-reply"


def test_auto_submitted_no_is_a_person() -> None:
    """`Auto-Submitted: no` is what a person's own mail may carry."""
    raw = _mail("Fråga om mötet", "Hej, när är mötet?", Auto_Submitted="no")
    assert classify(raw, CONTEXT).kind == "unknown"


def test_the_mailto_request_from_the_address_itself_is_acted_on() -> None:
    """The footer's mailto link, sent by the subscriber, unsubscribes that address."""
    result = verdict("unsubscribe-mailto.eml")
    assert (result.kind, result.addresses, result.confirmed) == (
        "unsubscribe",
        ("johan.alvsjo@example.org",),
        True,
    )


def test_a_request_with_a_valid_token_is_acted_on_from_any_address() -> None:
    """A forward to the mailto address from a private address, carrying the signed link,
    unsubscribes the link's owner."""
    result = verdict("unsubscribe-with-token.eml")
    assert (result.kind, result.addresses, result.confirmed) == (
        "unsubscribe",
        ("karin.ohman@example.com",),
        True,
    )


def test_requests_a_person_must_check() -> None:
    """To the mailto address from an unknown address without a token: listed, not acted on."""
    result = verdict("unsubscribe-without-token.eml")
    assert result.kind == "unsubscribe"
    assert not result.confirmed
    assert result.addresses == ("lars.privat@example.net",)
    assert "a person should check it" in result.reason


def test_a_request_for_a_colleague_is_for_a_person() -> None:
    """ "Kan ni avregistrera min kollega …?" unsubscribes nobody, neither colleague nor sender."""
    result = verdict("forwarded-request.eml")
    assert (result.kind, result.mentions_unsubscribe) == ("unknown", True)
    assert "someone else" in result.reason


# The three replies that an earlier smakom unsubscribed (issue #21), as readers write them.
ASKS_TO_STAY = [
    (
        "Re: SmåKom Nyhetsbrev Januari 2021",
        "Avregistrera mig INTE, jag vill gärna fortsätta få brevet!",
    ),
    ("Re: SmåKom Nyhetsbrev", "Hej! länken för att avregistrera sig fungerar inte för min kollega"),
    ("Unsubscribe-länken i förra brevet", "jag vill vara kvar på listan"),
]


@pytest.mark.parametrize(("subject", "body"), ASKS_TO_STAY)
@pytest.mark.parametrize("to", ["nyhetsbrev@smakom.se", "avregistrera@smakom.se"])
def test_replies_that_ask_to_stay_unsubscribe_nobody(subject: str, body: str, to: str) -> None:
    """To the Reply-To or even to the mailto address, these words stay for a person."""
    result = classify(_mail(subject, body, To=to), CONTEXT)
    assert result.kind == "unknown"
    assert result.mentions_unsubscribe
    assert "a person should read it" in result.reason


@pytest.mark.parametrize("header", ["To", "Cc", "Delivered-To", "X-Original-To"])
def test_a_request_is_one_addressed_to_the_mailto(header: str) -> None:
    """The mailto address in To, Cc, Delivered-To or X-Original-To makes a request."""
    headers = {"To": "nyhetsbrev@smakom.se", header.replace("-", "_"): "avregistrera@smakom.se"}
    result = classify(_mail("unsubscribe", "", **headers), CONTEXT)
    assert (result.kind, result.addresses, result.confirmed) == (
        "unsubscribe",
        ("anna.aberg@example.com",),
        True,
    )


def test_the_same_words_to_the_reply_to_address_are_for_a_person() -> None:
    """ "Avregistrera mig" as a reply to the newsletter is never acted on; the report says so."""
    result = classify(_mail("Avregistrera mig", "Avregistrera mig tack"), CONTEXT)
    assert (result.kind, result.mentions_unsubscribe, result.addresses) == (
        "unknown",
        True,
        ("anna.aberg@example.com",),
    )
    assert "not the unsubscribe address" in result.reason
    ordinary = classify(_mail("Re: nyhetsbrev", "Tack för ett bra brev!"), CONTEXT)
    assert not ordinary.mentions_unsubscribe


def test_a_forged_token_is_not_valid() -> None:
    """A token signed with another key does not unsubscribe anyone."""
    raw = (BOUNCES / "unsubscribe-with-token.eml").read_bytes()
    other = Context(mailto=CONTEXT.mailto, secret=b"x" * 38, subscribed=CONTEXT.subscribed)
    assert not classify(raw, other).confirmed


def test_an_ordinary_reply_quoting_the_footer_is_a_person() -> None:
    """A reader's reply that quotes "avsluta din prenumeration" and its link stays a reply."""
    result = verdict("ordinary-reply.eml")
    assert result.kind == "unknown"
    assert result.sender == "olivia.strom@example.com"


def test_a_long_letter_to_the_mailto_is_a_person() -> None:
    """Only a short message to the mailto address is a request, not a letter mentioning it."""
    letter = "Hej! " + "Vi diskuterade om vi ska avregistrera oss från mässan. " * 12
    to = {"To": "avregistrera@smakom.se"}
    assert classify(_mail("Re: nyhetsbrev", letter, **to), CONTEXT).kind == "unknown"
    assert classify(_mail("Re: nyhetsbrev", "Avregistrera mig tack", **to), CONTEXT).confirmed


def test_a_delay_notice_is_not_a_bounce() -> None:
    """`Action: delayed` says the server is still trying: nothing is counted."""
    raw = (BOUNCES / "postfix-dsn.eml").read_bytes().replace(b"Action: failed", b"Action: delayed")
    result = classify(raw, CONTEXT)
    assert result.kind == "auto-reply"
    assert "still trying" in result.reason


def test_a_message_id_of_an_issue_sent_before_is_still_recognised() -> None:
    """A bounce quoting a Message-ID made by an earlier smakom still names its recipient:
    the keyed id and the signature are pinned to the bytes already out in the world."""
    sent = b"<18ed75f7a41b2e23.2021-01.59242f3039c61cac.d4502abe9642@smakom.se>"
    assert recipient_id(SECRET, "anna.aberg@example.com") == "59242f3039c61cac"
    (reference,) = find_references(SECRET, [sent])
    assert (reference.issue, reference.recipient_id) == ("2021-01", "59242f3039c61cac")
    assert CONTEXT.recipient_ids[reference.recipient_id] == "anna.aberg@example.com"


def test_message_id_references_are_signed_and_say_nothing_of_the_address() -> None:
    """The reference names issue and recipient id; the address is not in it; forgeries fail."""
    value = message_id(SECRET, "2021-01", "anna.aberg@example.com", "smakom.se")
    assert "anna" not in value and value.endswith("@smakom.se>")
    assert value != message_id(SECRET, "2021-01", "anna.aberg@example.com", "smakom.se")
    (reference,) = find_references(SECRET, [value.encode()])
    assert reference.issue == "2021-01"
    assert reference.recipient_id == recipient_id(SECRET, "anna.aberg@example.com")
    forged = value.replace("2021-01", "2021-02").encode()
    assert find_references(SECRET, [forged]) == []
    assert find_references(b"y" * 38, [value.encode()]) == []
    odd = message_id(SECRET, "nummer 1.å", "x@y.se", "smakom.se")
    assert find_references(SECRET, [odd.encode()])[0].issue == "nummer 1.å"


# One message is read in milliseconds; the bound is far above that, so that a loaded CI
# machine never fails it, and far below what a message that stalls the run would take.
TIME_BOUND = 3.0


def _timed(raw: bytes) -> Verdict:
    start = time.perf_counter()
    result = classify(raw, CONTEXT)
    assert time.perf_counter() - start < TIME_BOUND
    return result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_any_bytes_give_a_verdict(raw: bytes) -> None:
    """Whatever is in the mailbox, classify answers and never fails."""
    assert isinstance(_timed(raw), Verdict)


def _nested(depth: int, kind: str, leaf: bytes = b"Subject: inne\r\n\r\nhej\r\n") -> bytes:
    """A message whose message/rfc822 parts, or multiparts, are nested `depth` deep."""
    inner = leaf
    for level in range(depth):
        if kind == "message":
            inner = b"Content-Type: message/rfc822\r\n\r\n" + inner
        else:
            b = f"b{level}".encode()
            inner = (
                b"Content-Type: multipart/mixed; boundary="
                + b
                + b"\r\n\r\n--"
                + b
                + b"\r\n"
                + inner
                + b"\r\n--"
                + b
                + b"--\r\n"
            )
    return b"From: x@example.net\r\nSubject: djup\r\nMessage-ID: <deep@x>\r\n" + inner


def _many_parts(count: int) -> bytes:
    part = b"--p\r\nContent-Type: text/plain\r\n\r\nhej\r\n"
    return (
        b"From: x@example.net\r\nSubject: delar\r\n"
        b"Content-Type: multipart/mixed; boundary=p\r\n\r\n" + part * count + b"--p--\r\n"
    )


@pytest.mark.parametrize(
    "raw",
    [
        _nested(1000, "message"),
        _nested(1000, "multipart"),
        _nested(MAX_DEPTH + 2, "message"),
        _many_parts(5000),
        _many_parts(MAX_PARTS + 5),
    ],
    ids=["rfc822-1000-deep", "multipart-1000-deep", "just-too-deep", "5000-parts", "too-many"],
)
def test_a_message_beyond_the_bounds_is_unreadable(raw: bytes) -> None:
    """Deep nesting and thousands of parts give `unreadable`, naming the message, at once."""
    result = _timed(raw)
    assert result.kind == "unreadable"
    assert result.subject in ("djup", "delar") and result.sender == "x@example.net"
    assert "unreadable" in result.reason


def test_real_nesting_is_within_the_bounds() -> None:
    """A bounce of a forward of a forward (a few levels) is still read."""
    assert _timed(_nested(4, "message")).kind == "unknown"
    assert _timed(_nested(4, "multipart")).kind == "unknown"


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: " + b"x" * 900_000 + b"\r\n\r\nbody",
        b"".join(b"X-H%d: v\r\n" % i for i in range(60_000)) + b"\r\nbody",
        b"Subject: " + b"=?utf-8?q?" + b"=C3=A5" * 100_000 + b"?=\r\n\r\nx",
        b"Content-Type: text/html\r\n\r\n" + b"<a " * 200_000,
        b"Content-Type: text/html\r\n\r\n" + b"<!--" * 200_000,
        b"From: MAILER-DAEMON@x\r\nSubject: failure notice\r\n\r\n" + b"550 5.1.1 " * 80_000,
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a\r\n" * 300_000,
        _nested(30, "message", (BOUNCES / "gmail-dsn.eml").read_bytes()),
    ],
    ids=[
        "huge-header",
        "many-headers",
        "huge-encoded-word",
        "html-tags",
        "html-comments",
        "huge-bounce",
        "boundary-lines",
        "dsn-too-deep",
    ],
)
def test_pathological_messages_get_a_verdict_in_time(raw: bytes) -> None:
    """Huge headers, a megabyte of tags or status codes: a verdict within the time bound."""
    assert isinstance(_timed(raw), Verdict)


@st.composite
def _structures(draw: st.DrawFn) -> bytes:
    """Random trees of multiparts and attached messages, wide, deep and with odd headers."""
    leaves = st.sampled_from(
        [
            b"Content-Type: text/plain\r\n\r\n550 5.1.1 user unknown\r\n",
            b"Content-Type: text/html\r\n\r\n<p>Avregistrera mig</p>\r\n",
            b"Content-Type: message/delivery-status\r\n\r\nAction: failed\r\n\r\n"
            b"Final-Recipient: rfc822;a@b.se\r\nAction: failed\r\nStatus: 5.1.1\r\n",
            b"Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n",
            b"Subject: =?utf-8?b?" + b"w6U=" * 50 + b"?=\r\n\r\nx",
            b"\r\n",
        ]
    )

    def tree(depth: int) -> bytes:
        if depth == 0 or draw(st.booleans()):
            return draw(leaves)
        if draw(st.booleans()):
            return b"Content-Type: message/rfc822\r\n\r\n" + tree(depth - 1)
        boundary = f"x{depth}".encode()
        width = draw(st.integers(0, 40))
        body = b"".join(
            b"--" + boundary + b"\r\n" + tree(depth - 1) + b"\r\n" for _ in range(width)
        )
        subtype = draw(st.sampled_from([b"mixed", b"report; report-type=feedback-report"]))
        return (
            b"Content-Type: multipart/"
            + subtype
            + b"; boundary="
            + boundary
            + b"\r\n\r\n"
            + body
            + b"--"
            + boundary
            + b"--\r\n"
        )

    head = draw(st.binary(max_size=200)).replace(b"\n", b" ")
    return b"From: x@example.net\r\nX-Junk: " + head + b"\r\n" + tree(draw(st.integers(0, 40)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_structures())
def test_any_structure_gives_a_verdict_in_time(raw: bytes) -> None:
    """Random nesting, widths and parts give a verdict within the time bound, never an error."""
    assert isinstance(_timed(raw), Verdict)


_header_names = st.sampled_from(
    [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Auto-Submitted",
        "Precedence",
        "Return-Path",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Final-Recipient",
        "Action",
        "Status",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(_header_names, st.text(max_size=80)), max_size=12),
    st.text(max_size=500),
    st.sampled_from([b"", (BOUNCES / "gmail-dsn.eml").read_bytes()]),
)
def test_damaged_mail_gives_a_verdict(
    headers: list[tuple[str, str]], body: str, tail: bytes
) -> None:
    """Odd headers, broken MIME and strange encodings give a verdict, never an exception,
    and a small message is always read (unreadable is for what is beyond the bounds)."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    raw = (head + "\r\n" + body).encode("utf-8", "surrogateescape") + tail
    assert _timed(raw).kind != "unreadable"


def test_a_bounce_of_a_built_message_leads_back_to_its_recipient() -> None:
    """A message built with the key, returned with only its headers, names issue and address."""
    from smakom_cli.audience.unsubscribe_links import link_for
    from smakom_cli.compose.issue import load_issue
    from smakom_cli.compose.message import MessageBuilder, Recipient
    from smakom_cli.compose.render import personal_values, render_issue
    from smakom_cli.config import load_config

    config = load_config(EXAMPLES / "smakom.toml")
    rendered = render_issue(load_issue(EXAMPLES / "issues" / "2021-01.md"), config)
    address = "Maria.Soderberg@example.com"
    recipient = Recipient(address, "Maria", personal_values({"email": address}, ""))
    built = MessageBuilder(rendered, config, secret=SECRET).build(
        recipient, link_for(config, SECRET, address)
    )
    headers = built.split(b"\r\n\r\n", 1)[0]
    assert b"maria" not in headers.split(b"Message-ID:", 1)[1].split(b"\r\n", 1)[0].lower()
    bounce = (
        b"From: postmaster@gateway.example\r\nSubject: Olevererbart\r\n"
        b"Content-Type: text/plain\r\n\r\n550 5.1.1 Mottagaren finns inte\r\n\r\n" + headers
    )
    result = classify(bounce, CONTEXT)
    assert (result.kind, result.issue, result.addresses) == (
        "hard",
        "2021-01",
        ("maria.soderberg@example.com",),
    )
