"""`smakom inbox`: the office's mailbox over IMAP, sorted, and nothing in it ever deleted.

Each new message in the configured folder is read without marking it read (BODY.PEEK),
judged by `bounces.classify`, and then, in this order:
1. its effect is recorded: an unsubscribe in `unsubscribed.csv` (idempotent);
2. the message is written to `inbox.jsonl` (what was made of it, where it goes);
3. a handled message is moved to its folder: IMAP MOVE, or COPY + \\Deleted + UID EXPUNGE of
   that one UID (UIDPLUS), or, on a server with neither, COPY + a keyword, left in place.
A connection dropped anywhere leaves steps done or not done, never half done: the next run
skips what `inbox.jsonl` knows and finishes the moves it had recorded. A reader's real reply,
a bounce of the office's own mail and anything not understood stay where they are, unmarked.

One call, `sort_inbox`, is the whole run. Its parts: `imap` (the session), `bounces` and
`requests` (what a message is), `sorting` (what to do about it, pure), `inbox_log` (what was
done); the report's text is `cli/output.py`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from imapclient.exceptions import IMAPClientError

from smakom_cli.atomic import writing
from smakom_cli.audience.references import ids_for
from smakom_cli.audience.subscribers import Subscriber, iter_subscribers, parse_address
from smakom_cli.audience.suppression import SuppressionList
from smakom_cli.config import Config, InboxConfig
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _, ngettext
from smakom_cli.locks import holding
from smakom_cli.returns.bounces import Context, Verdict, classify
from smakom_cli.returns.imap import CONNECTION_ERRORS, Session, close, connect, describe, sign_in
from smakom_cli.returns.inbox_log import Entry, InboxLog
from smakom_cli.returns.sorting import Decision, Deliveries, decide
from smakom_cli.signin.resolver import Login

LOG_NAME = "inbox.jsonl"


@dataclass(frozen=True)
class Sorted:
    """What was made of one message, and what was (or in a dry run would be) done."""

    uid: int
    verdict: Verdict
    action: Literal["move", "leave"]
    to: str
    effect: str
    issue: str = ""
    addresses: tuple[str, ...] = ()
    suppressed: tuple[str, ...] = ()
    repeat: bool = False
    """The same Message-ID was sorted before, under another UID (its effect is not repeated)."""


@dataclass(frozen=True)
class InboxReport:
    """One run: each new message, moves finished from an earlier run, and how it ended."""

    host: str
    folder: str
    dry_run: bool
    items: tuple[Sorted, ...]
    already_seen: int
    finished_moves: int
    interrupted: str = ""
    """Why the run stopped early ("" when it read every message)."""
    report_file: Path | None = None
    """Where the run's report belongs (None in a dry run or when nothing was new)."""
    bounce_files: tuple[Path, ...] = ()
    """Each issue's bounces so far, written to `sent/`."""


def sort_inbox(
    config: Config,
    login: Login,
    secret: bytes | None,
    *,
    dry_run: bool,
    now: datetime | None = None,
    on_message: Callable[[Sorted], None] | None = None,
) -> InboxReport:
    """Sort the new mail in the configured folder and write each issue's bounces so far to
    `sent/`; in a dry run, only say what would be done."""
    require_mailbox(config)
    if dry_run:
        return _read(config, login, secret, dry_run=True, on_message=on_message)
    when = now or datetime.now()
    # Two runs at once would both sort the same new messages.
    busy = _("another smakom inbox is sorting this mailbox right now; wait for it to finish.")
    with holding(config.folder / f"{LOG_NAME}.run.lock", timeout=0, busy=lambda: busy):
        report = _read(config, login, secret, dry_run=False, on_message=on_message)
        bounce_files = write_bounce_files(config, report, when)
    report_file = None
    if report.items or report.interrupted:
        report_file = config.journal_dir / f"inbox-{when:%Y%m%d-%H%M%S}.report.txt"
    return replace(report, bounce_files=tuple(bounce_files), report_file=report_file)


def _read(
    config: Config,
    login: Login,
    secret: bytes | None,
    *,
    dry_run: bool,
    on_message: Callable[[Sorted], None] | None,
) -> InboxReport:
    inbox = config.inbox
    log = InboxLog.read(config.folder / LOG_NAME)
    deliveries = Deliveries.read(config.journal_dir)
    subscribed = deliveries.everyone | _subscriber_keys(config.subscribers_path)
    context = Context(
        mailto=config.unsubscribe.mailto,
        secret=secret,
        recipient_ids=_recipient_ids(secret, subscribed),
        subscribed=subscribed,
    )
    suppression = SuppressionList(config.suppression_path)
    client = connect(inbox)
    run = _Run(config, Session(client), log, deliveries, context, suppression, dry_run, on_message)
    try:
        sign_in(client, inbox, login)
        run.sort()
    except CONNECTION_ERRORS as exc:
        run.interrupted = ngettext(
            "the connection to {host} was lost ({reason}) after {count} new message; what was "
            "done is recorded: run `smakom inbox` again to finish.",
            "the connection to {host} was lost ({reason}) after {count} new messages; what was "
            "done is recorded: run `smakom inbox` again to finish.",
            len(run.items),
        ).format(host=inbox.host, reason=describe(exc), count=len(run.items))
    except IMAPClientError as exc:
        run.interrupted = ngettext(
            "the mail server {host} refused a command ({reason}) after {count} new message; "
            "what was done is recorded: run `smakom inbox` again to finish, or ask whoever runs "
            "the mailbox.",
            "the mail server {host} refused a command ({reason}) after {count} new messages; "
            "what was done is recorded: run `smakom inbox` again to finish, or ask whoever runs "
            "the mailbox.",
            len(run.items),
        ).format(host=inbox.host, reason=describe(exc), count=len(run.items))
    finally:
        close(client)
    return InboxReport(
        host=inbox.host,
        folder=inbox.folder,
        dry_run=dry_run,
        items=tuple(run.items),
        already_seen=run.already_seen,
        finished_moves=run.finished_moves,
        interrupted=run.interrupted,
    )


def require_mailbox(config: Config) -> InboxConfig:
    """The [inbox] table, when it names a mailbox (host and username)."""
    if not config.inbox.host or not config.inbox.username:
        raise SmakomError(
            _(
                "{path}: [inbox] needs host and username, those of the mailbox the "
                "newsletter's bounces and replies come back to (see docs/inbox.md)."
            ).format(path=config.path)
        )
    return config.inbox


class _Run:
    """One pass over the folder; keeps what was done so far for the report."""

    def __init__(
        self,
        config: Config,
        session: Session,
        log: InboxLog,
        deliveries: Deliveries,
        context: Context,
        suppression: SuppressionList,
        dry_run: bool,
        on_message: Callable[[Sorted], None] | None,
    ) -> None:
        self.inbox = config.inbox
        self.session = session
        self.log = log
        self.deliveries = deliveries
        self.context = context
        self.suppression = suppression
        self.dry_run = dry_run
        self.on_message = on_message
        self.items: list[Sorted] = []
        self.already_seen = 0
        self.finished_moves = 0
        self.interrupted = ""
        self._by_message_id = log.by_message_id()

    def sort(self) -> None:
        folder = self.inbox.folder
        uidvalidity, uids = self.session.select(folder, readonly=self.dry_run)
        seen = self.log.seen(folder, uidvalidity)
        self.already_seen = sum(1 for uid in uids if uid in seen)
        if not self.dry_run:
            pending = [
                (uid, seen[uid].to) for uid in uids if uid in seen and seen[uid].action == "move"
            ]
            self.finished_moves = self.session.finish_moves(pending)
        new = [uid for uid in uids if uid not in seen]
        for uid, raw, sorted_before in self.session.fetch(new):
            if sorted_before:
                self.already_seen += 1
                continue
            self._one(uidvalidity, uid, raw)

    def _one(self, uidvalidity: int, uid: int, raw: bytes) -> None:
        verdict = classify(raw, self.context)
        earlier = self._by_message_id.get(verdict.message_id) if verdict.message_id else None
        decision = decide(verdict, self.deliveries, self.log, self.inbox, dry_run=self.dry_run)
        if earlier is not None and earlier.action == "leave" and decision.action == "leave":
            # The same message seen under another UID (the mailbox was rebuilt): once is enough.
            self.already_seen += 1
            if not self.dry_run:
                self._record(_entry(self.inbox.folder, uidvalidity, uid, verdict, decision))
            return
        suppressed: tuple[str, ...] = ()
        if not self.dry_run:
            if decision.unsubscribe:
                changes = self.suppression.unsubscribe(
                    decision.unsubscribe,
                    source=decision.source,
                    reason=decision.reason,
                    when=verdict.date,
                )
                suppressed = tuple(c.email for c in changes if not c.already)
            self._record(_entry(self.inbox.folder, uidvalidity, uid, verdict, decision))
            if decision.action == "move":
                self.session.move(uid, decision.to)
        else:
            suppressed = tuple(
                a for a in decision.unsubscribe if not self.suppression.is_suppressed(a)
            )
            # Kept in memory only, so the dry run counts soft bounces as the real run would.
            entry = _entry(self.inbox.folder, uidvalidity, uid, verdict, decision)
            self.log.record(entry)
        item = Sorted(
            uid=uid,
            verdict=verdict,
            action=decision.action,
            to=decision.to,
            effect=decision.effect,
            issue=decision.issue,
            addresses=decision.addresses,
            suppressed=suppressed,
            repeat=earlier is not None,
        )
        self.items.append(item)
        if self.on_message is not None:
            self.on_message(item)

    def _record(self, entry: Entry) -> None:
        self.log = self.log.append(entry)
        if entry.message_id:
            self._by_message_id[entry.message_id] = entry


def _entry(folder: str, uidvalidity: int, uid: int, verdict: Verdict, decision: Decision) -> Entry:
    return Entry(
        time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        folder=folder,
        uidvalidity=uidvalidity,
        uid=uid,
        message_id=verdict.message_id,
        kind=verdict.kind,
        addresses=decision.addresses or verdict.addresses,
        issue=decision.issue,
        reason=verdict.reason,
        action=decision.action,
        to=decision.to,
    )


def write_bounce_files(config: Config, report: InboxReport, now: datetime) -> list[Path]:
    """Each issue's bounces so far, as a text file in `sent/`."""
    folder = config.journal_dir
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    log = InboxLog.read(config.folder / LOG_NAME)
    for issue in sorted({item.issue for item in report.items if item.issue}):
        entries = [e for e in log.entries if e.issue == issue and e.kind in ("hard", "soft")]
        if not entries:
            continue
        path = folder / f"{issue}.bounces.txt"
        lines = [
            f"Issue: {issue}, as of {now:%Y-%m-%d %H:%M}",
            _bounce_line(entries),
            "",
            *(f"{e.kind}\t{', '.join(e.addresses)}\t{e.reason}" for e in entries),
        ]
        with writing(path):
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _bounce_line(entries: list[Entry]) -> str:
    hard = sum(e.kind == "hard" for e in entries)
    return _("Bounces read by smakom inbox: {hard} hard, {soft} soft").format(
        hard=hard, soft=len(entries) - hard
    )


def _subscriber_keys(path: Path) -> frozenset[str]:
    if not path.exists():
        return frozenset()
    return frozenset(s.key for s in iter_subscribers(path) if isinstance(s, Subscriber))


def _recipient_ids(secret: bytes | None, keys: frozenset[str]) -> Mapping[str, str]:
    """Keyed id → address, for each address as the journal keeps it and as it was sent."""
    if secret is None:
        return {}
    ids = dict(ids_for(secret, keys))
    for key in keys:
        try:
            sent_as = parse_address(key).send_to.lower()
        except SmakomError:
            continue
        if sent_as != key:
            ids.update(dict.fromkeys(ids_for(secret, [sent_as]), key))
    return ids
