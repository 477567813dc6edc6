"""The pre-send check: everything that can be found wrong without the network.

Errors stop a real send (unless forced); warnings are worth a look. Each finding says
where to fix it: the issue file and line, the configuration, or the template.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from smakom_cli.compose.render import RenderedIssue
from smakom_cli.config import Config
from smakom_cli.errors import SmakomError

GMAIL_CLIP_BYTES = 102 * 1024
SUBJECT_MAX = 78
IMAGE_MAX_BYTES = 1024 * 1024
MESSAGE_WARN_BYTES = 500 * 1024  # every subscriber downloads it; most newsletters stay under
CSS_PROBLEMS_SHOWN = 5
_HREF = re.compile(r"""\shref\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{\{%20|%7B%7B", re.DOTALL)
_SAMPLE_ADDRESS = "mottagare@example.org"
# Where each header that cannot be folded short enough comes from.
_HEADER_SOURCES = {
    "From": "[sender] email",
    "Reply-To": "[sender] reply_to",
    "Message-ID": "[sender] email",
    "List-Id": "[newsletter] list_id",
    "List-Unsubscribe": "[unsubscribe] url and mailto",
}


@dataclass(frozen=True)
class Finding:
    severity: Literal["error", "warning"]
    where: str
    message: str


@dataclass(frozen=True)
class _Mail:
    """What each check looks at: the rendered issue and one recipient's bodies."""

    rendered: RenderedIssue
    config: Config
    html: str
    text: str

    @property
    def name(self) -> str:
        return self.rendered.issue.path.name


def check_issue(rendered: RenderedIssue, config: Config, html: str, text: str) -> list[Finding]:
    """Check an issue as one recipient would get it (`html` and `text` personalised)."""
    mail = _Mail(rendered, config, html, text)
    checks = (
        _subject,
        _size,
        _message_size,
        _line_lengths,
        _images,
        _linked_images,
        _css,
        _links,
        _output,
        _unsubscribe,
        _addresses,
        _web_version,
    )
    return [finding for check in checks for finding in check(mail)]


def _subject(mail: _Mail) -> Iterator[Finding]:
    issue = mail.rendered.issue
    if len(issue.subject) > SUBJECT_MAX:
        yield Finding(
            "warning",
            mail.name,
            f"the subject is {len(issue.subject)} characters; mail programs show about "
            f"{SUBJECT_MAX} in the list view.",
        )
    if not issue.preheader:
        yield Finding(
            "warning", mail.name, "no preheader: the inbox shows the first words of the body."
        )


def _size(mail: _Mail) -> Iterator[Finding]:
    size = len(mail.html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        yield Finding(
            "error",
            mail.name,
            f"the HTML is {size / 1024:.0f} KB; Gmail cuts messages over 102 KB and hides "
            "the rest, the unsubscribe link included. Shorten the issue.",
        )


def _message_size(mail: _Mail) -> Iterator[Finding]:
    """The whole message, embedded images included: what each subscriber downloads, and
    what the provider may refuse (`[smtp] max_message_mb`)."""
    from smakom_cli.compose.message import estimated_size

    size = estimated_size(mail.rendered, mail.html, mail.text)
    limit = mail.config.smtp.max_message_mb * 1024 * 1024
    shown = _megabytes(size)
    advice = (
        "link the images from the web version instead ('images: link' in the issue, or "
        '[newsletter] images = "link")'
        if mail.rendered.image_mode == "embed" and mail.rendered.images
        else "make the images smaller"
    )
    if size > limit:
        yield Finding(
            "error",
            mail.name,
            f"the message is {shown}, over the mail provider's limit of "
            f"{mail.config.smtp.max_message_mb:g} MB ([smtp] max_message_mb); {advice}.",
        )
    elif size > MESSAGE_WARN_BYTES:
        yield Finding(
            "warning",
            mail.name,
            f"the message is {shown} and goes to every subscriber (keep it under "
            f"{MESSAGE_WARN_BYTES // 1024} KB); {advice}.",
        )


def _line_lengths(mail: _Mail) -> Iterator[Finding]:
    """Every server refuses a message with a line over 998 octets ("500 Line too long"), so
    it would be refused for every recipient. Subjects and names are folded to fit; what
    cannot be split (a URL, an address) is found here, on one message built as a send would."""
    from smakom_cli.audience.unsubscribe_links import link_for
    from smakom_cli.compose.message import LINE_LIMIT, MessageBuilder, Recipient, overlong_lines

    try:
        builder = MessageBuilder(mail.rendered, mail.config)
    except SmakomError:
        return  # an image that cannot be read: `_images` reports it
    # Any key makes a token of the same length, so the sample's lines are as long as the real.
    link = link_for(mail.config, bytes(32), _SAMPLE_ADDRESS)
    message = builder.build(Recipient(_SAMPLE_ADDRESS, "", {}), link)
    for where, length in overlong_lines(message).items():
        source = _HEADER_SOURCES.get(where.removesuffix(" header"))
        yield Finding(
            "error",
            mail.config.path.name if source else mail.name,
            f"the {where} has a line of {length} characters; mail servers refuse lines over "
            f"{LINE_LIMIT} (RFC 5322), so every message would be refused. Shorten "
            f"{source or 'it'}.",
        )


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def _linked_images(mail: _Mail) -> Iterator[Finding]:
    """Linked images must be on the web before the mail goes out, or every reader sees a
    broken image; the check can only look at the site folder `smakom archive` writes."""
    from smakom_cli.compose.archive import DEFAULT_FOLDER
    from smakom_cli.compose.images import archive_path

    if mail.rendered.image_mode != "link":
        return
    site = mail.config.folder / DEFAULT_FOLDER
    missing = [
        image
        for image in mail.rendered.images
        if image.path.is_file()
        and not (site / archive_path(mail.config.folder, image.path)).is_file()
    ]
    if missing:
        yield Finding(
            "warning",
            mail.name,
            f"the images are linked from {mail.config.newsletter.web_base_url}, but "
            f"{len(missing)} of them are not in the web version ({DEFAULT_FOLDER}/) yet: run "
            f"`smakom archive` and upload {DEFAULT_FOLDER}/ before sending.",
        )


def _css(mail: _Mail) -> Iterator[Finding]:
    """What the CSS parser could not read in the template: mail programs skip those rules."""
    problems = mail.rendered.css_problems
    for problem in problems[:CSS_PROBLEMS_SHOWN]:
        yield Finding(
            "warning",
            mail.rendered.template_name,
            f"a CSS rule cannot be read and is left out: {problem}",
        )
    if len(problems) > CSS_PROBLEMS_SHOWN:
        yield Finding(
            "warning",
            mail.rendered.template_name,
            f"{len(problems) - CSS_PROBLEMS_SHOWN} more CSS problems like these.",
        )


def _images(mail: _Mail) -> Iterator[Finding]:
    for ref in mail.rendered.content.images:
        if not ref.alt.strip():
            yield Finding(
                "error",
                f"{mail.name} line {ref.line}",
                f"the image {ref.src} has no alt text: write it inside ![…].",
            )
    brand = mail.config.brand
    if brand.logo and not brand.logo_alt:
        yield Finding(
            "warning", mail.config.path.name, "[brand] logo_alt is empty: the logo has no alt text."
        )
    for image in mail.rendered.images:
        if not image.path.is_file():
            yield Finding("error", image.origin, f"the image {image.path} does not exist.")
        elif image.path.stat().st_size > IMAGE_MAX_BYTES:
            megabytes = image.path.stat().st_size / 1024 / 1024
            travels = (
                "goes into every message"
                if mail.rendered.image_mode == "embed"
                else "is downloaded by every reader"
            )
            yield Finding(
                "warning",
                image.origin,
                f"the image {image.path.name} is {megabytes:.1f} MB and {travels}; make it "
                "smaller.",
            )


def _links(mail: _Mail) -> Iterator[Finding]:
    body_links = {link.href: link.line for link in mail.rendered.content.links}
    # The HTML writes `&` in a link as `&amp;`; the issue file and the reader see `&`.
    for href in dict.fromkeys(map(html.unescape, _HREF.findall(mail.html))):
        if not re.match(r"(?i)(https?://[^/\s]+|mailto:[^@\s]+@)", href):
            line = body_links.get(href)
            where = f"{mail.name} line {line}" if line else "the template or smakom.toml"
            yield Finding(
                "error", where, f"the link '{href}' is not a full http(s):// or mailto: address."
            )


def _output(mail: _Mail) -> Iterator[Finding]:
    if _PLACEHOLDER.search(mail.html) or _PLACEHOLDER.search(mail.text):
        yield Finding("error", "the template", "a template placeholder ({{ … }}) was left.")
    if not mail.text.strip():
        yield Finding("error", "the template", "the plain-text part is empty.")


def _unsubscribe(mail: _Mail) -> Iterator[Finding]:
    if not (mail.config.unsubscribe.mailto or mail.config.unsubscribe.url):
        yield Finding(
            "error",
            mail.config.path.name,
            "no [unsubscribe] mailto or url: the List-Unsubscribe header would be missing.",
        )
    elif not mail.config.unsubscribe.url:
        yield Finding(
            "error",
            mail.config.path.name,
            "no https [unsubscribe] url: Gmail and Yahoo require one-click unsubscribe "
            "(RFC 8058) from bulk senders, and a mailto address alone does not give it.",
        )
    elif not mail.config.unsubscribe.url.startswith("https://"):
        yield Finding(
            "error",
            mail.config.path.name,
            "[unsubscribe] url is http://, for a test on this machine only: readers' "
            "providers need an https link for one-click unsubscribe (RFC 8058).",
        )
    for part, body in (("HTML", mail.rendered.html), ("plain text", mail.rendered.text)):
        if not any(field.name == "unsubscribe_url" for field in body.fields):
            yield Finding("error", "the template", f"the {part} has no {{{{ unsubscribe_url }}}}.")


def _addresses(mail: _Mail) -> Iterator[Finding]:
    sender = mail.config.sender
    yield from _check_address(mail.config, "sender.email", sender.email, required=True)
    yield from _check_address(mail.config, "sender.reply_to", sender.reply_to, required=False)


def _web_version(mail: _Mail) -> Iterator[Finding]:
    if not mail.config.newsletter.web_base_url:
        yield Finding(
            "warning",
            mail.config.path.name,
            "[newsletter] web_base_url is not set: the mail has no link to a web version.",
        )


def _check_address(config: Config, key: str, value: str, *, required: bool) -> Iterator[Finding]:
    from email_validator import EmailNotValidError, validate_email

    if not value:
        if required:
            yield Finding("error", config.path.name, f"'{key}' is not set.")
        return
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        yield Finding("error", config.path.name, f"'{key}' = {value!r} is not valid: {exc}")


def probe_service(config: Config, timeout: float = 3.0) -> Finding | None:
    """A warning when the one-click service does not answer at its health address.

    The only check that uses the network, kept apart so the others run offline.
    """
    import urllib.error
    import urllib.request

    from smakom_cli.returns.sync import service_urls

    urls = service_urls(config)
    if urls is None:
        return None
    try:
        with urllib.request.urlopen(urls.health, timeout=timeout) as response:  # noqa: S310
            if response.read(100).strip() == b"ok":
                return None
            problem = "answers, but not as `smakom serve` does"
    except urllib.error.HTTPError as exc:
        problem = f"answers {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        problem = f"answers nothing ({getattr(exc, 'reason', exc)})"
    return Finding(
        "warning",
        config.path.name,
        f"the one-click unsubscribe service at {urls.health} {problem}: readers who press "
        "Unsubscribe in Gmail or Yahoo, or the footer link, would not be heard. See "
        "docs/service.md on running `smakom serve`.",
    )
