"""Long subjects, names and links: folded so no server refuses a line, or refused by the check.

Mail servers refuse a line over 998 octets ("500 Line too long", RFC 5322 2.1.1), for every
recipient alike. How a header reads back: RFC 5322 unfolding only removes the line breaks,
and smakom writes each run of spaces (and control characters) in a subject or name as one
space, so a header reads back as the text with such runs made one space and the ends trimmed.
Display names are compared ignoring whitespace when read by Python's parser: unlike RFC 2047
6.2 and mail programs, it reads a space between two encoded-words (a long name needs several),
and it makes any run of whitespace in a name, a no-break space too, one space.
"""

from __future__ import annotations

import dataclasses
import json
import re
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smakom_cli.audience.unsubscribe_links import link_for
from smakom_cli.cli import app
from smakom_cli.compose.issue import load_issue
from smakom_cli.compose.message import MessageBuilder, Recipient
from smakom_cli.compose.render import RenderedIssue, personal_values, render_issue
from smakom_cli.config import Config, load_config
from smakom_cli.delivery.check import check_issue
from smakom_cli.signin.credentials import store_password
from tests.conftest import EXAMPLES
from tests.delivery.test_cli_send import use_server
from tests.delivery.test_dry_run import active_addresses
from tests.smtp_server import SmtpTestServer

ISSUE = "issues/2021-01.md"
SECRET = b"s" * 32
SWEDISH = "Årsmöte i Östersund och Umeå – rapport från styrelsen, vindkraft, äldreomsorg. "
SWEDISH_SUBJECT = (SWEDISH * 30)[:2000].rstrip()
ASCII_SUBJECT = ("Nyhetsbrev 2021 " * 125).strip()
LONG_NAME = (
    "Anna-Karin Åberg Östlund, kommunstyrelsens ordförande i Ragunda kommun och ledamot i "
    "SmåKoms styrelse sedan 2015 (kontaktperson för Jämtlands län)"
)
LONG_ADDRESS = "anna-karin.aberg@example.com"


def set_subject(folder: Path, subject: str) -> None:
    path = folder / ISSUE
    text = path.read_text(encoding="utf-8")
    old = "subject: SmåKom Nyhetsbrev Januari 2021\n"
    assert old in text
    # JSON is YAML: a quoted string keeps every character of the subject.
    new = f"subject: {json.dumps(subject, ensure_ascii=False)}\n"
    path.write_text(text.replace(old, new), encoding="utf-8")


def header_lines(data: bytes, name: str) -> list[bytes]:
    """The lines of one header as folded in the message."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(head) if line.startswith(name.encode() + b":"))
    end = next(
        (i for i in range(start + 1, len(head)) if head[i][:1] not in (b" ", b"\t")), len(head)
    )
    return head[start:end]


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    return message


def one_line(text: str) -> str:
    """What smakom makes of a subject or name: runs of spaces and controls one space."""
    return re.sub(r"[\x00-\x20\x7f]+", " ", text).strip()


@pytest.mark.parametrize("subject", [SWEDISH_SUBJECT, ASCII_SUBJECT], ids=["swedish", "ascii"])
def test_a_long_subject_and_name_reach_every_subscriber_intact(
    runner: CliRunner, synced_newsletter: Path, smtp_server: SmtpTestServer, subject: str
) -> None:
    """A 2,000-character subject and a long display name are sent to everyone (the server
    refuses no line as too long), and each reads back exactly; no header line is over 78."""
    newsletter = synced_newsletter
    use_server(newsletter, smtp_server)
    store_password(smtp_server.username, smtp_server.password)
    set_subject(newsletter, subject)
    with (newsletter / ISSUE).open("a", encoding="utf-8") as issue:
        issue.write("\nhttps://www.smakom.se/" + "lång-adress-" * 300 + "\n")
    with (newsletter / "subscribers.csv").open("a", encoding="utf-8") as csv:
        csv.write(f"{LONG_ADDRESS};{LONG_NAME};Ragunda kommun\r\n")

    result = runner.invoke(app, ["send", ISSUE, "--yes"])

    assert result.exit_code == 0, result.output
    expected = sorted(active_addresses(newsletter))
    assert LONG_ADDRESS in expected
    assert sorted(r.lower() for r in smtp_server.recipients()) == expected
    for received in smtp_server.messages:
        lines = received.data.split(b"\r\n")
        assert max(len(line) for line in lines) <= 998
        for name in ("Subject", "To", "From", "List-Id", "Content-Type"):
            assert all(len(line) <= 78 for line in header_lines(received.data, name)), name
        assert parse(received.data)["Subject"] == subject
    long_named = next(m for m in smtp_server.messages if m.rcpt_tos == (LONG_ADDRESS,))
    to = parse(long_named.data)["To"].addresses[0]
    assert (to.display_name, to.addr_spec) == (LONG_NAME, LONG_ADDRESS)


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(EXAMPLES / "smakom.toml")


@pytest.fixture(scope="module")
def rendered(config: Config) -> RenderedIssue:
    """The example issue with its images linked, so building a message reads no files."""
    return render_issue(load_issue(EXAMPLES / ISSUE), config, images="link")


def build(rendered: RenderedIssue, config: Config, subject: str, name: str) -> bytes:
    issue = dataclasses.replace(rendered.issue, subject=subject)
    builder = MessageBuilder(dataclasses.replace(rendered, issue=issue), config)
    address = "mottagare@example.org"
    recipient = Recipient(address, name, personal_values({"name": name}, ""))
    return builder.build(recipient, link_for(config, SECRET, address))


def test_mail_programs_read_a_long_swedish_name_exactly(
    rendered: RenderedIssue, config: Config
) -> None:
    """A name of many Swedish words is split into encoded-words only at its spaces, so a
    mail program reading RFC 2047 shows it exactly."""
    name = "Åsa Öberg Ängsö Västerås Sjöström Åkerlund Ödmark Skärgård Hälsingegården Åre"
    data = build(rendered, config, "Hej", name)
    lines = header_lines(data, "To")
    assert len(lines) > 1
    assert all(len(line) <= 78 for line in lines)
    folded = b"".join(lines).decode("ascii").removeprefix("To: ")
    phrase = folded.removesuffix(" <mottagare@example.org>")
    assert str(make_header(decode_header(phrase))) == name


def test_a_subject_with_one_very_long_word_still_folds(
    rendered: RenderedIssue, config: Config
) -> None:
    """A 1,200-character word (a pasted link) in the subject is encoded and split over
    lines, so it arrives whole instead of being refused."""
    subject = "Läs mer: https://www.smakom.se/" + "x" * 1200
    data = build(rendered, config, subject, "")
    assert all(len(line) <= 78 for line in header_lines(data, "Subject"))
    assert parse(data)["Subject"] == subject


names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
long_words = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=70, max_size=1200
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=st.one_of(names, long_words).filter(lambda text: one_line(text) != ""),
    name=st.one_of(names, long_words),
    sender=st.one_of(names, long_words),
)
@example(subject="=?utf-8?q?hej?= " + "ö" * 500, name="Eve\r\nBcc: all@example.org", sender="")
@example(subject="a" * 1200, name='"Åsa" \\ <å@ä> ' * 30, sender="SmåKom " * 40)
def test_any_subject_and_name_fold_and_read_back(
    rendered: RenderedIssue, config: Config, subject: str, name: str, sender: str
) -> None:
    """Whatever the subject, the recipient's name and the sender's and newsletter's names,
    no line is over 998 octets, no line of those headers over 78, and they read back."""
    config = dataclasses.replace(
        config,
        sender=dataclasses.replace(config.sender, name=sender),
        newsletter=dataclasses.replace(config.newsletter, name=sender),
    )
    data = build(rendered, config, subject, name)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    for header in ("Subject", "To", "From", "List-Id"):
        assert all(len(line) <= 78 for line in header_lines(data, header)), header
    message = parse(data)
    assert message["Subject"] == one_line(subject)
    for header, display_name, address in (
        ("To", name, "mottagare@example.org"),
        ("From", sender, config.sender.email),
    ):
        read = message[header].addresses[0]
        assert read.addr_spec == address
        assert "".join(read.display_name.split()) == "".join(one_line(display_name).split())
    assert message["List-Id"].endswith(f"<{config.list_id}>")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.integers(min_value=0, max_value=1100), subject=st.one_of(names, long_words))
@example(path=0, subject="Hej")
@example(path=1100, subject="Hej")
def test_the_check_errs_exactly_when_a_line_would_be_refused(
    rendered: RenderedIssue, config: Config, path: int, subject: str
) -> None:
    """With an unsubscribe link of any length and any subject, `check` reports an error
    about line length exactly when a built message has a line over 998 octets."""
    url = "https://www.smakom.se/" + "a" * path
    config = dataclasses.replace(
        config, unsubscribe=dataclasses.replace(config.unsubscribe, url=url)
    )
    data = build(rendered, config, subject or "Hej", "Anna Åberg")
    issue = dataclasses.replace(rendered.issue, subject=subject or "Hej")
    sample = dataclasses.replace(rendered, issue=issue)
    html, text = sample.personalise(personal_values({"name": "Anna"}, url))
    refused = [
        finding
        for finding in check_issue(sample, config, html, text, data)
        if "mail servers refuse lines over 998" in finding.message
    ]
    too_long = max(len(line) for line in data.split(b"\r\n")) > 998
    assert bool(refused) == too_long
    assert all(finding.severity == "error" for finding in refused)
