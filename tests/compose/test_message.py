"""The message each recipient gets: MIME structure, headers, encodings, unsubscribe token."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from smakom_cli.audience.unsubscribe_links import address_from_token, link_for, make_token
from smakom_cli.compose.issue import load_issue
from smakom_cli.compose.message import MessageBuilder, Recipient
from smakom_cli.compose.render import personal_values, render_issue
from smakom_cli.config import Config, load_config
from smakom_cli.errors import SmakomError
from tests.conftest import EXAMPLES, REPO

SECRET = b"s" * 32


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(EXAMPLES / "smakom.toml")


@pytest.fixture(scope="module")
def builder(config: Config) -> MessageBuilder:
    rendered = render_issue(load_issue(EXAMPLES / "issues" / "2021-01.md"), config)
    return MessageBuilder(rendered, config)


def build(builder: MessageBuilder, config: Config, address: str, name: str) -> EmailMessage:
    values = personal_values({"email": address, "name": name}, "")
    raw = builder.build(Recipient(address, name, values), link_for(config, SECRET, address))
    bare = raw.replace(b"\r\n", b"")
    assert b"\r\n" in raw and b"\n" not in bare and b"\r" not in bare  # SMTP's line ends only
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    return message


def test_headers_of_a_bulk_message(builder: MessageBuilder, config: Config) -> None:
    """From, Reply-To, To, Subject, List-Id and the unsubscribe headers are all there."""
    message = build(builder, config, "anna.aberg@example.com", "Anna Åberg")
    assert message["From"] == "SmåKom <nyhetsbrev@smakom.se>"
    assert message["Reply-To"] == "charlotta@smakom.se"
    assert message["To"] == "Anna Åberg <anna.aberg@example.com>"
    assert message["Subject"] == "SmåKom Nyhetsbrev Januari 2021"
    assert message["List-Id"] == "SmåKom Nyhetsbrev <nyhetsbrev.smakom.se>"
    assert message["Message-ID"].endswith("@smakom.se>")
    assert message["Date"]
    unsubscribe = message["List-Unsubscribe"]
    assert "<mailto:avregistrera@smakom.se?subject=avregistrera%20anna.aberg%40example.com>" in (
        unsubscribe
    )
    assert "<https://www.smakom.se/avregistrera?token=" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_parts_text_first_then_html_with_embedded_images(
    builder: MessageBuilder, config: Config
) -> None:
    """multipart/alternative: plain text, then the HTML with its images in multipart/related."""
    message = build(builder, config, "anna.aberg@example.com", "Anna Åberg")
    kinds = [part.get_content_type() for part in message.walk()]
    assert kinds[:4] == ["multipart/alternative", "text/plain", "multipart/related", "text/html"]
    assert kinds[4:] == ["image/png"] * 6  # the logo, three social icons, two photos
    html_part = message.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    for image in list(message.walk())[4:]:
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
        assert image.get_content()[:4] == b"\x89PNG"


def test_the_footer_link_is_the_header_link_and_carries_a_valid_token(
    builder: MessageBuilder, config: Config
) -> None:
    """The visible unsubscribe link is the https one in List-Unsubscribe, and names the reader."""
    message = build(builder, config, "eva.lindqvist@example.com", "Eva")
    https = message["List-Unsubscribe"].split("<")[-1].rstrip(">")
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    assert text_part is not None and html_part is not None
    assert f"klicka här <{https}>" in text_part.get_content()
    assert https.replace("&", "&amp;") in html_part.get_content()
    assert "eva" not in https
    known = ["bo@example.com", "eva.lindqvist@example.com"]
    assert address_from_token(SECRET, https, known) == "eva.lindqvist@example.com"


def test_a_forged_token_is_refused() -> None:
    """A token made with another key does not unsubscribe anyone."""
    forged = make_token(b"other" * 8, "bo@example.com")
    with pytest.raises(SmakomError, match="not a valid unsubscribe token"):
        address_from_token(SECRET, forged, ["bo@example.com"])


def test_names_cannot_inject_headers(builder: MessageBuilder, config: Config) -> None:
    """A name with a line break and a header in it stays inside the To header."""
    message = build(builder, config, "eve@example.com", "Eve\r\nBcc: all@example.org")
    assert message["Bcc"] is None
    assert "eve@example.com" in message["To"]


@pytest.mark.parametrize("break_", ["\r\n", "\r", "\n"])
def test_a_line_break_in_a_personal_value_is_a_line_break_in_the_body(
    newsletter: Path, break_: str
) -> None:
    """A name from a spreadsheet cell with a line break in it (Windows, old Mac or Unix),
    printed by the template, is one ordinary line break in the text: never a bare CR or LF,
    which servers refuse."""
    folder = newsletter / "templates"
    folder.mkdir(exist_ok=True)
    text = (REPO / "templates" / "newsletter.txt").read_text(encoding="utf-8")
    (folder / "newsletter.txt").write_text("Hej {{ subscriber.name }}!\n" + text, "utf-8")
    personal = load_config(newsletter / "smakom.toml")
    issue = load_issue(newsletter / "issues" / "2021-01.md")
    builder = MessageBuilder(render_issue(issue, personal, columns=("email", "name")), personal)
    message = build(builder, personal, "eva@example.com", f"Eva{break_}Lindqvist")
    body = message.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n").startswith("Hej Eva\nLindqvist!\n")


def test_internationalised_domains_are_sent_in_ascii(
    builder: MessageBuilder, config: Config
) -> None:
    """An address at an IDN domain goes out as punycode, never inside an encoded word."""
    message = build(builder, config, "asa@exämple.se", "Åsa Öberg")
    assert message["To"].addresses[0].domain == "xn--exmple-cua.se"
    assert message["To"].addresses[0].display_name == "Åsa Öberg"


def test_mailto_only_lists_get_no_one_click_header(config: Config) -> None:
    """Without an https link there is no List-Unsubscribe-Post (RFC 8058)."""
    mailto_only = Config(path=config.path, unsubscribe=type(config.unsubscribe)(mailto="a@b.se"))
    link = link_for(mailto_only, None, "anna@example.com")
    assert not link.one_click
    assert link.header == "<mailto:a@b.se?subject=avregistrera%20anna%40example.com>"
