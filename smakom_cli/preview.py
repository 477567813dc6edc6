"""What `smakom preview` shows: the envelope, the text a reader sees, the audience, findings."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formataddr

from smakom_cli.check import Finding, check_issue
from smakom_cli.mailing import Mailing
from smakom_cli.subscribers import AudienceSummary, Subscriber


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

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def build_preview(mailing: Mailing, as_email: str | None = None) -> Preview:
    """The issue as one subscriber (the first on the list unless named) would get it."""
    config = mailing.config
    recipient = mailing.sample(as_email)
    html, text = mailing.personalise(recipient)
    return Preview(
        sender=formataddr((config.sender.name, config.sender.email)),
        reply_to=config.sender.reply_to,
        subject=mailing.issue.subject,
        preheader=mailing.issue.preheader,
        recipient=recipient,
        text=text,
        html=html,
        audience=mailing.audience(),
        findings=tuple(check_issue(mailing.rendered, config, html, text)),
    )
