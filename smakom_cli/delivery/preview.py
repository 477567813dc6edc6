"""What `smakom preview` shows: the envelope, the text a reader sees, the audience, sizes and
every finding `smakom check` makes (the same function, on the same rendering)."""

from __future__ import annotations

import html as html_lib
from dataclasses import dataclass

from smakom_cli.audience.subscribers import AudienceSummary, Subscriber
from smakom_cli.compose.message import estimated_size
from smakom_cli.compose.render import RenderedIssue
from smakom_cli.delivery.check import Finding, check_issue
from smakom_cli.delivery.mailing import Mailing


@dataclass(frozen=True)
class Preview:
    sender: str
    reply_to: str
    subject: str
    preheader: str
    recipient: Subscriber
    text: str
    html: str
    audience: AudienceSummary
    findings: tuple[Finding, ...]
    message_bytes: int
    image_mode: str

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def build_preview(mailing: Mailing, as_email: str | None = None) -> Preview:
    """The issue as one subscriber (the first on the list unless named) would get it."""
    config = mailing.config
    recipient = mailing.sample(as_email)
    html, text = mailing.personalise(recipient)
    message = mailing.sample_message(recipient)
    findings = tuple(check_issue(mailing.rendered, config, html, text, message))
    # Without a message (an image that cannot be read, one of the findings) it still shows.
    message_bytes = (
        estimated_size(mailing.rendered, html, text) if message is None else len(message)
    )
    sender = config.sender
    return Preview(
        sender=f"{sender.name} <{sender.email}>" if sender.name else sender.email,
        reply_to=sender.reply_to,
        subject=mailing.issue.subject,
        preheader=mailing.issue.preheader,
        recipient=recipient,
        text=text,
        html=html,
        audience=mailing.audience(),
        findings=findings,
        message_bytes=message_bytes,
        image_mode=mailing.rendered.image_mode,
    )


def browser_html(rendered: RenderedIssue, html: str) -> str:
    """The HTML with local images shown from disk, for opening in a browser before they are
    embedded in a message or published with the web version."""
    for image in rendered.images:
        html = html.replace(
            f'src="{html_lib.escape(image.src)}"', f'src="{html_lib.escape(image.path.as_uri())}"'
        )
    return html
