"""What `smakom inbox` does about one message: the policy, pure, tested with data.

From a verdict (`bounces.classify`), who was sent which issue and what the inbox log
knows, a decision: move it (and to which folder) or leave it for a person, and whom to
unsubscribe with which source and reason. A hard bounce, a complaint or a request of a
reader who was sent the newsletter unsubscribes; soft bounces on `soft_bounce_limit`
issues in a row do; a block of the sending, an auto-reply, a stranger's bounce or a
person's mail never does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from smakom_cli.audience.subscribers import parse_address
from smakom_cli.config import InboxConfig
from smakom_cli.delivery.journal import sent_by_issue
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.returns.bounces import Verdict
from smakom_cli.returns.inbox_log import InboxLog


@dataclass(frozen=True)
class Deliveries:
    """Who was sent which issue, from the journals in `sent/`."""

    sent: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, journal_dir: Path) -> Deliveries:
        """Every journal in `sent/` (also older `.until-…` ones), by the issue it names."""
        return cls(sent_by_issue(journal_dir))

    def issues_of(self, key: str) -> list[str]:
        """The issues sent to this address, oldest first (issue names sort by date)."""
        return sorted(issue for issue, keys in self.sent.items() if key in keys)

    @functools.cached_property
    def everyone(self) -> frozenset[str]:
        """Every address sent any issue."""
        return frozenset().union(*self.sent.values()) if self.sent else frozenset()


@dataclass(frozen=True)
class Decision:
    """What to do about one message: move it or leave it, and whom to unsubscribe."""

    action: Literal["move", "leave"]
    to: str
    effect: str
    issue: str = ""
    addresses: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    source: str = ""
    reason: str = ""


def decide(
    verdict: Verdict,
    deliveries: Deliveries,
    log: InboxLog,
    inbox: InboxConfig,
    *,
    dry_run: bool = False,
) -> Decision:
    """What to do about one message; changes nothing. A dry run's effects say "would"."""
    if verdict.kind in ("hard", "soft"):
        return _decide_bounce(verdict, deliveries, log, inbox, dry_run=dry_run)
    if verdict.kind == "unsubscribe":
        if not verdict.confirmed or not verdict.addresses:
            left = _("left for a person: {reason}").format(reason=verdict.reason)
            return Decision("leave", "", left, verdict.issue)
        wrong = [a for a in verdict.addresses if not _is_address(a)]
        if wrong:
            effect = _("{addresses} is not an e-mail address: left for a person").format(
                addresses=", ".join(wrong)
            )
            return Decision("leave", "", effect, verdict.issue)
        return Decision(
            "move",
            inbox.unsubscribe_folder,
            _("would unsubscribe") if dry_run else _("unsubscribed"),
            verdict.issue,
            verdict.addresses,
            unsubscribe=verdict.addresses,
            source="mail",
            reason=verdict.reason,
        )
    if verdict.kind == "unreadable":
        effect = _("unreadable: moved for a person to look at, never deleted")
        return Decision("move", inbox.unreadable_folder, effect, addresses=verdict.addresses)
    if verdict.kind == "complaint":
        sent = tuple(a for a in verdict.addresses if deliveries.issues_of(a))
        if not sent:
            effect = _(
                "a spam complaint about nobody this newsletter was sent to: left for a person"
            )
            return Decision("leave", "", effect, verdict.issue, verdict.addresses)
        return Decision(
            "move",
            inbox.unsubscribe_folder,
            _("would unsubscribe") if dry_run else _("unsubscribed"),
            verdict.issue or deliveries.issues_of(sent[0])[-1],
            sent,
            unsubscribe=sent,
            source="complaint",
            reason=verdict.reason,
        )
    if verdict.kind == "blocked":
        effect = _(
            "the sending was blocked: the receiving server refused smakom's server or domain, "
            "not this address; nobody was unsubscribed for it"
        )
        return Decision("move", inbox.bounce_folder, effect, verdict.issue, verdict.addresses)
    if verdict.mentions_unsubscribe:
        effect = _("left for a person: {reason}").format(reason=verdict.reason)
        return Decision("leave", "", effect, verdict.issue)
    if verdict.kind == "auto-reply":
        if verdict.recipient or any(a in deliveries.everyone for a in verdict.addresses):
            return Decision(
                "move",
                inbox.auto_reply_folder,
                _("ignored, never counted as a bounce"),
                verdict.issue,
                verdict.addresses,
            )
        return Decision("leave", "", _("not about the newsletter: left in place"))
    return Decision("leave", "", _("left in place"), verdict.issue, verdict.addresses)


def _decide_bounce(
    verdict: Verdict, deliveries: Deliveries, log: InboxLog, inbox: InboxConfig, *, dry_run: bool
) -> Decision:
    matched: list[tuple[str, str]] = []
    for address in verdict.addresses:
        issues = deliveries.issues_of(address)
        if verdict.issue and verdict.issue in issues:
            matched.append((address, verdict.issue))
        elif not verdict.issue and issues:
            matched.append((address, issues[-1]))
    if not matched:
        if not verdict.addresses:
            effect = _("no address could be read from it: left for a person")
        elif verdict.issue:
            effect = _("never sent issue {issue}: left for a person").format(issue=verdict.issue)
        else:
            effect = _("never sent this newsletter: left for a person")
        return Decision("leave", "", effect, verdict.issue, verdict.addresses)
    addresses = tuple(address for address, _issue in matched)
    issue = matched[0][1]
    if verdict.kind == "hard":
        return Decision(
            "move",
            inbox.bounce_folder,
            _("would unsubscribe") if dry_run else _("unsubscribed"),
            issue,
            addresses,
            unsubscribe=addresses,
            source="bounce",
            reason=bounce_reason(verdict),
        )
    limit = inbox.soft_bounce_limit
    counts = {a: soft_bounce_count(a, i, deliveries, log) for a, i in matched}
    over = tuple(a for a, n in counts.items() if n >= limit)
    if len(counts) == 1:
        effect = _("counted: {count} of {limit} issues in a row").format(
            count=next(iter(counts.values())), limit=limit
        )
    else:
        each = ", ".join(
            _("{address} {count} of {limit}").format(address=a, count=n, limit=limit)
            for a, n in counts.items()
        )
        effect = _("counted: {each}").format(each=each)
    if over and len(counts) == 1:
        done = _("{effect}; would unsubscribe") if dry_run else _("{effect}; unsubscribed")
        effect = done.format(effect=effect)
    elif over:
        done = (
            _("{effect}; would unsubscribe {addresses}")
            if dry_run
            else _("{effect}; unsubscribed {addresses}")
        )
        effect = done.format(effect=effect, addresses=", ".join(over))
    reason = _("soft bounces on {limit} issues in a row; the last: {bounce_reason}").format(
        limit=limit, bounce_reason=bounce_reason(verdict)
    )
    return Decision(
        "move",
        inbox.bounce_folder,
        effect,
        issue,
        addresses,
        unsubscribe=over,
        source="bounce",
        reason=reason,
    )


def soft_bounce_count(key: str, issue: str, deliveries: Deliveries, log: InboxLog) -> int:
    """Issues in a row, newest first, that bounced softly for this address, this one included.

    The row is counted back from the newest issue sent to the address: an issue it was sent
    that has no soft bounce on record (a delivery that did not come back) ends it, so a
    later successful delivery sets the count back to nothing.
    """
    bounced = log.soft_issues(key) | {issue}
    count = 0
    for sent in reversed(deliveries.issues_of(key)):
        if sent not in bounced:
            break
        count += 1
    return count


def bounce_reason(verdict: Verdict) -> str:
    if verdict.status and verdict.status not in verdict.reason:
        return f"{verdict.status} {verdict.reason}"
    return verdict.reason


def _is_address(text: str) -> bool:
    try:
        parse_address(text)
    except SmakomError:
        return False
    return True
