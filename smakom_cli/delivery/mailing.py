"""One issue going to one list: who gets it, and each recipient's message built.

The issue is rendered once; the subscriber list is streamed, so messages are built one at a
time as the outbox writer or the SMTP sender asks for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from smakom_cli.atomic import writing
from smakom_cli.audience.subscribers import (
    AudienceSummary,
    Subscriber,
    find_subscriber,
    iter_recipients,
    read_columns,
    summarise,
)
from smakom_cli.audience.suppression import SuppressionList
from smakom_cli.audience.unsubscribe_links import link_for
from smakom_cli.compose.issue import Issue, load_issue
from smakom_cli.compose.message import MessageBuilder, Recipient
from smakom_cli.compose.render import ImageMode, RenderedIssue, personal_values, render_issue
from smakom_cli.config import Config
from smakom_cli.delivery.check import Finding, check_issue
from smakom_cli.delivery.smtp import Outgoing
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

if TYPE_CHECKING:
    import jinja2

SAMPLE_ADDRESS = "mottagare@example.org"


@dataclass(frozen=True)
class Mailing:
    """An issue rendered for a list, with what every message needs."""

    config: Config
    rendered: RenderedIssue
    subscribers_path: Path
    suppression: SuppressionList
    secret: bytes | None

    @property
    def issue(self) -> Issue:
        return self.rendered.issue

    def audience(self) -> AudienceSummary:
        return summarise(self.subscribers_path, self.suppression.is_suppressed)

    def recipients(self) -> Iterator[Subscriber]:
        """Everyone who gets the issue, streamed from the list, suppressed addresses left out."""
        return iter_recipients(self.subscribers_path, self.suppression.is_suppressed)

    def sample(self, email: str | None = None) -> Subscriber:
        """The subscriber a preview is personalised as: the one asked for, else the first."""
        if email:
            found = find_subscriber(self.subscribers_path, email)
            if found is None:
                raise SmakomError(
                    _("{email} is not on the list {name}.").format(
                        email=email, name=self.subscribers_path.name
                    )
                )
            return found
        return next(self.recipients(), None) or sample_reader()

    def personalise(self, subscriber: Subscriber) -> tuple[str, str]:
        """The HTML and plain text this subscriber would read."""
        link = link_for(self.config, self.secret, subscriber.key)
        return self.rendered.personalise(personal_values(subscriber.fields, link.footer_url))

    def check(self) -> list[Finding]:
        """The pre-send check, on the message the first recipient would get."""
        sample = self.sample()
        html, text = self.personalise(sample)
        return check_issue(self.rendered, self.config, html, text, self.sample_message(sample))

    def sample_message(self, subscriber: Subscriber) -> bytes | None:
        """The whole message `subscriber` would get, built as a send builds it; None when it
        cannot be built (an image that cannot be read, which the check names)."""
        try:
            builder = MessageBuilder(self.rendered, self.config, secret=self.secret)
        except SmakomError:
            return None
        return self._outgoing(builder, subscriber).message

    def messages(
        self, subscribers: Iterable[Subscriber], *, subject_prefix: str = ""
    ) -> Iterator[Outgoing]:
        """Each subscriber's message, built only when asked for."""
        # The Message-ID carries a signed reference to issue and recipient, so a bounce
        # that quotes only the original headers still finds the subscriber (`smakom inbox`).
        builder = MessageBuilder(
            self.rendered, self.config, subject_prefix=subject_prefix, secret=self.secret
        )
        for subscriber in subscribers:
            yield self._outgoing(builder, subscriber)

    def _outgoing(self, builder: MessageBuilder, subscriber: Subscriber) -> Outgoing:
        recipient = Recipient(
            address=subscriber.address,
            name=subscriber.name,
            values=personal_values(subscriber.fields, ""),
        )
        link = link_for(self.config, self.secret, subscriber.key)
        return Outgoing(subscriber.key, subscriber.address, builder.build(recipient, link))

    def proofs(self, addresses: Iterable[str], sample: Subscriber | None) -> Iterator[Outgoing]:
        """Test messages to `addresses`, the subject marked, the content personalised as
        `sample` (a made-up reader when None), the links proof links that unsubscribe nobody
        and the To line each proof address's own."""
        prefix = self.config.newsletter.test_subject_prefix
        builder = MessageBuilder(self.rendered, self.config, subject_prefix=prefix)
        values = personal_values((sample or sample_reader()).fields, "")
        for address in addresses:
            link = link_for(self.config, self.secret, address, proof=True)
            recipient = Recipient(address=address, name="", values=values)
            yield Outgoing(address.lower(), address, builder.build(recipient, link))


def sample_reader() -> Subscriber:
    """A reader who is on no list: what a proof without --as, or an empty list, shows."""
    return Subscriber(
        email=SAMPLE_ADDRESS,
        address=SAMPLE_ADDRESS,
        key=SAMPLE_ADDRESS,
        name="",
        fields={"email": SAMPLE_ADDRESS},
        line=0,
    )


def prepare(
    config: Config,
    issue_path: Path,
    *,
    subscribers_path: Path | None = None,
    secret: bytes | None,
    images: ImageMode = "mail",
    template_env: jinja2.Environment | None = None,
) -> Mailing:
    """Load and render an issue for the list (the configured one unless another is given);
    `template_env` is one kept from an earlier rendering (`preview --watch`)."""
    subscribers = subscribers_path or config.subscribers_path
    issue = load_issue(issue_path)
    rendered = render_issue(
        issue,
        config,
        columns=read_columns(subscribers),
        images=images,
        template_env=template_env,
    )
    return Mailing(config, rendered, subscribers, SuppressionList(config.suppression_path), secret)


@dataclass(frozen=True)
class OutboxReport:
    folder: Path
    messages: int
    total_bytes: int


def write_outbox(mailing: Mailing, folder: Path) -> OutboxReport:
    """A dry run: every message as it would go out, one `.eml` file per recipient.

    Old `.eml` files in the folder are removed first, so the folder shows this run only.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.eml"):
        old.unlink()
    count = size = 0
    for count, outgoing in enumerate(mailing.messages(mailing.recipients()), start=1):
        name = re.sub(r"[^A-Za-z0-9@._+-]", "_", outgoing.envelope_to)
        path = folder / f"{count:05d}-{name}.eml"
        with writing(path):
            path.write_bytes(outgoing.message)
        size += len(outgoing.message)
    return OutboxReport(folder=folder, messages=count, total_bytes=size)
