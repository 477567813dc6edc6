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
from smakom_cli.i18n import N_, _

GMAIL_CLIP_BYTES = 102 * 1024
SUBJECT_MAX = 78
IMAGE_MAX_BYTES = 1024 * 1024
MESSAGE_WARN_BYTES = 500 * 1024  # every subscriber downloads it; most newsletters stay under
CSS_PROBLEMS_SHOWN = 5
_HREF = re.compile(r"""\shref\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{\{%20|%7B%7B", re.DOTALL)
# Where each header that cannot be folded short enough comes from.
_HEADER_SOURCES = {
    "From": N_("[sender] email"),
    "Reply-To": N_("[sender] reply_to"),
    "Message-ID": N_("[sender] email"),
    "List-Id": N_("[newsletter] list_id"),
    "List-Unsubscribe": N_("[unsubscribe] url and mailto"),
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
    message: bytes | None

    @property
    def name(self) -> str:
        return self.rendered.issue.path.name


def check_issue(
    rendered: RenderedIssue, config: Config, html: str, text: str, message: bytes | None
) -> list[Finding]:
    """Check an issue as one recipient would get it: `html` and `text` personalised, and
    `message` whole as a send builds it (None when it cannot be built: an image that cannot
    be read, which the check names)."""
    mail = _Mail(rendered, config, html, text, message)
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
            _(
                "the subject is {count} characters; mail programs show about "
                "{subject_max} in the list view."
            ).format(count=len(issue.subject), subject_max=SUBJECT_MAX),
        )
    if not issue.preheader:
        yield Finding(
            "warning", mail.name, _("no preheader: the inbox shows the first words of the body.")
        )


def _size(mail: _Mail) -> Iterator[Finding]:
    size = len(mail.html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        yield Finding(
            "error",
            mail.name,
            _(
                "the HTML is {value:.0f} KB; Gmail cuts messages over 102 KB and hides "
                "the rest, the unsubscribe link included. Shorten the issue."
            ).format(value=size / 1024),
        )


def _message_size(mail: _Mail) -> Iterator[Finding]:
    """The whole message, embedded images included: what each subscriber downloads, and
    what the provider may refuse (`[smtp] max_message_mb`)."""
    from smakom_cli.compose.message import estimated_size

    message = mail.message
    size = estimated_size(mail.rendered, mail.html, mail.text) if message is None else len(message)
    limit = mail.config.smtp.max_message_mb * 1024 * 1024
    shown = _megabytes(size)
    if mail.rendered.image_mode == "embed" and mail.rendered.images:
        advice = _(
            "link the images from the web version instead ('images: link' in the issue, or "
            '[newsletter] images = "link")'
        )
    else:
        advice = _("make the images smaller")
    if size > limit:
        yield Finding(
            "error",
            mail.name,
            _(
                "the message is {shown}, over the mail provider's limit of "
                "{max_message_mb:g} MB ([smtp] max_message_mb); {advice}."
            ).format(shown=shown, max_message_mb=mail.config.smtp.max_message_mb, advice=advice),
        )
    elif size > MESSAGE_WARN_BYTES:
        yield Finding(
            "warning",
            mail.name,
            _(
                "the message is {shown} and goes to every subscriber (keep it under "
                "{value} KB); {advice}."
            ).format(shown=shown, value=MESSAGE_WARN_BYTES // 1024, advice=advice),
        )


def _line_lengths(mail: _Mail) -> Iterator[Finding]:
    """Every server refuses a message with a line over 998 octets ("500 Line too long"), so
    it would be refused for every recipient. Subjects and names are folded to fit; what
    cannot be split (a URL, an address) is found here, on the message as a send builds it."""
    from smakom_cli.compose.message import LINE_LIMIT, overlong_lines

    if mail.message is None:
        return  # an image that cannot be read: `_images` reports it
    for where, length in overlong_lines(mail.message).items():
        source = _HEADER_SOURCES.get(where.removesuffix(" header"))
        yield Finding(
            "error",
            mail.config.path.name if source else mail.name,
            _(
                "the {where} has a line of {length} characters; mail servers refuse "
                "lines over {line_limit} (RFC 5322), so every message would be "
                "refused. Shorten {source}."
            ).format(
                where=where,
                length=length,
                line_limit=LINE_LIMIT,
                source=_(source) if source else _("it"),
            ),
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
            _(
                "the images are linked from {web_base_url}, but {count} of them are "
                "not in the web version ({default_folder}/) yet: run `smakom archive` "
                "and upload {default_folder}/ before sending."
            ).format(
                web_base_url=mail.config.newsletter.web_base_url,
                count=len(missing),
                default_folder=DEFAULT_FOLDER,
            ),
        )


def _css(mail: _Mail) -> Iterator[Finding]:
    """What the CSS parser could not read in the template: mail programs skip those rules."""
    problems = mail.rendered.css_problems
    for problem in problems[:CSS_PROBLEMS_SHOWN]:
        yield Finding(
            "warning",
            mail.rendered.template_name,
            _("a CSS rule cannot be read and is left out: {problem}").format(problem=problem),
        )
    if len(problems) > CSS_PROBLEMS_SHOWN:
        yield Finding(
            "warning",
            mail.rendered.template_name,
            _("{value} more CSS problems like these.").format(
                value=len(problems) - CSS_PROBLEMS_SHOWN
            ),
        )


def _images(mail: _Mail) -> Iterator[Finding]:
    for ref in mail.rendered.content.images:
        if not ref.alt.strip():
            yield Finding(
                "error",
                _("{name} line {line}").format(name=mail.name, line=ref.line),
                _("the image {src} has no alt text: write it inside ![…].").format(src=ref.src),
            )
    brand = mail.config.brand
    if brand.logo and not brand.logo_alt:
        yield Finding(
            "warning",
            mail.config.path.name,
            _("[brand] logo_alt is empty: the logo has no alt text."),
        )
    for image in mail.rendered.images:
        if not image.path.is_file():
            yield Finding(
                "error", image.origin, _("the image {path} does not exist.").format(path=image.path)
            )
        elif image.path.stat().st_size > IMAGE_MAX_BYTES:
            megabytes = image.path.stat().st_size / 1024 / 1024
            if mail.rendered.image_mode == "embed":
                sentence = _(
                    "the image {name} is {megabytes:.1f} MB and goes into every message; make "
                    "it smaller."
                )
            else:
                sentence = _(
                    "the image {name} is {megabytes:.1f} MB and is downloaded by every reader; "
                    "make it smaller."
                )
            yield Finding(
                "warning",
                image.origin,
                sentence.format(name=image.path.name, megabytes=megabytes),
            )


def _links(mail: _Mail) -> Iterator[Finding]:
    body_links = {link.href: link.line for link in mail.rendered.content.links}
    # The HTML writes `&` in a link as `&amp;`; the issue file and the reader see `&`.
    for href in dict.fromkeys(map(html.unescape, _HREF.findall(mail.html))):
        if not re.match(r"(?i)(https?://[^/\s]+|mailto:[^@\s]+@)", href):
            line = body_links.get(href)
            where = (
                _("{file} line {line}").format(file=mail.name, line=line)
                if line
                else _("the template or smakom.toml")
            )
            yield Finding(
                "error",
                where,
                _("the link '{href}' is not a full http(s):// or mailto: address.").format(
                    href=href
                ),
            )


def _output(mail: _Mail) -> Iterator[Finding]:
    if _PLACEHOLDER.search(mail.html) or _PLACEHOLDER.search(mail.text):
        yield Finding("error", _("the template"), _("a template placeholder ({{ … }}) was left."))
    if not mail.text.strip():
        yield Finding("error", _("the template"), _("the plain-text part is empty."))


def _unsubscribe(mail: _Mail) -> Iterator[Finding]:
    if not (mail.config.unsubscribe.mailto or mail.config.unsubscribe.url):
        yield Finding(
            "error",
            mail.config.path.name,
            _("no [unsubscribe] mailto or url: the List-Unsubscribe header would be missing."),
        )
    elif not mail.config.unsubscribe.url:
        yield Finding(
            "error",
            mail.config.path.name,
            _(
                "no https [unsubscribe] url: Gmail and Yahoo require one-click "
                "unsubscribe (RFC 8058) from bulk senders, and a mailto address alone "
                "does not give it."
            ),
        )
    elif not mail.config.unsubscribe.url.startswith("https://"):
        yield Finding(
            "error",
            mail.config.path.name,
            _(
                "[unsubscribe] url is http://, for a test on this machine only: "
                "readers' providers need an https link for one-click unsubscribe (RFC "
                "8058)."
            ),
        )
    for part, body in (("HTML", mail.rendered.html), ("plain text", mail.rendered.text)):
        if not any(field.name == "unsubscribe_url" for field in body.fields):
            yield Finding(
                "error",
                _("the template"),
                _("the {part} has no {{{{ unsubscribe_url }}}}.").format(part=part),
            )


def _addresses(mail: _Mail) -> Iterator[Finding]:
    sender = mail.config.sender
    yield from _check_address(mail.config, "sender.email", sender.email, required=True)
    yield from _check_address(mail.config, "sender.reply_to", sender.reply_to, required=False)


def _web_version(mail: _Mail) -> Iterator[Finding]:
    from smakom_cli.compose.archive import web_way_out

    if mail.config.newsletter.web_base_url and not web_way_out(mail.config):
        yield Finding(
            "warning",
            mail.config.path.name,
            _(
                "the web version (`smakom archive`) has no way to unsubscribe that works for "
                "anyone: its pages carry no personal link. Set [unsubscribe] mailto, an "
                "address readers can write to."
            ),
        )
    if not mail.config.newsletter.web_base_url:
        yield Finding(
            "warning",
            mail.config.path.name,
            _("[newsletter] web_base_url is not set: the mail has no link to a web version."),
        )


def _check_address(config: Config, key: str, value: str, *, required: bool) -> Iterator[Finding]:
    from email_validator import EmailNotValidError, validate_email

    if not value:
        if required:
            yield Finding("error", config.path.name, _("'{key}' is not set.").format(key=key))
        return
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        yield Finding(
            "error",
            config.path.name,
            _("'{key}' = {value!r} is not valid: {exc}").format(key=key, value=value, exc=exc),
        )


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
            problem = _("answers, but not as `smakom serve` does")
    except urllib.error.HTTPError as exc:
        problem = _("answers {code} {reason}").format(code=exc.code, reason=exc.reason)
    except (urllib.error.URLError, OSError) as exc:
        problem = _("answers nothing ({getattr})").format(getattr=getattr(exc, "reason", exc))
    return Finding(
        "warning",
        config.path.name,
        _(
            "the one-click unsubscribe service at {health} {problem}: readers who "
            "press Unsubscribe in Gmail or Yahoo, or the footer link, would not be "
            "heard. See docs/service.md on running `smakom serve`."
        ).format(health=urls.health, problem=problem),
    )
