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
"""

from __future__ import annotations

import functools
import imaplib
import re
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from smakom_cli.audience.references import ids_for
from smakom_cli.audience.subscribers import Subscriber, iter_subscribers, parse_address
from smakom_cli.audience.suppression import SuppressionList
from smakom_cli.config import Config, InboxConfig
from smakom_cli.delivery.journal import sent_by_issue
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import N_, _, ngettext
from smakom_cli.returns.bounces import Context, Verdict, classify
from smakom_cli.returns.inbox_log import Entry, InboxLog
from smakom_cli.signin.resolver import Login

LOG_NAME = "inbox.jsonl"
# Marks a message copied to its folder on a server that can neither MOVE nor expunge one UID.
SORTED_KEYWORD = "$SmakomSorted"
_FETCH_BATCH = 25
# What is read of one message: a bounce or a request is far smaller; of a reply with large
# attachments the headers and the text at the top are enough.
_READ_BYTES = 1 << 20
_CONNECTION_ERRORS = (imaplib.IMAP4.abort, OSError, EOFError)


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


def read_inbox(
    config: Config,
    login: Login,
    secret: bytes | None,
    *,
    dry_run: bool,
    on_message: Callable[[Sorted], None] | None = None,
) -> InboxReport:
    """Sort the new mail in the configured folder; in a dry run, only say what would be done."""
    require_mailbox(config)
    if dry_run:
        return _read(config, login, secret, dry_run=True, on_message=on_message)
    # Two runs at once would both sort the same new messages.
    lock = FileLock(config.folder / f"{LOG_NAME}.run.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SmakomError(
            _("another smakom inbox is sorting this mailbox right now; wait for it to finish.")
        ) from None
    try:
        return _read(config, login, secret, dry_run=False, on_message=on_message)
    finally:
        lock.release()


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
    run = _Run(config, client, log, deliveries, context, suppression, dry_run, on_message)
    try:
        _login(client, inbox, login)
        run.sort()
    except _CONNECTION_ERRORS as exc:
        run.interrupted = ngettext(
            "the connection to {host} was lost ({reason}) after {count} new message; what was "
            "done is recorded: run `smakom inbox` again to finish.",
            "the connection to {host} was lost ({reason}) after {count} new messages; what was "
            "done is recorded: run `smakom inbox` again to finish.",
            len(run.items),
        ).format(host=inbox.host, reason=_describe(exc), count=len(run.items))
    except IMAPClientError as exc:
        run.interrupted = ngettext(
            "the mail server {host} refused a command ({reason}) after {count} new message; "
            "what was done is recorded: run `smakom inbox` again to finish, or ask whoever runs "
            "the mailbox.",
            "the mail server {host} refused a command ({reason}) after {count} new messages; "
            "what was done is recorded: run `smakom inbox` again to finish, or ask whoever runs "
            "the mailbox.",
            len(run.items),
        ).format(host=inbox.host, reason=_describe(exc), count=len(run.items))
    finally:
        _close(client)
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


def connect(inbox: InboxConfig) -> IMAPClient:
    """A connection with TLS from the first byte, or upgraded by STARTTLS; certificates checked."""
    where = f"{inbox.host}:{inbox.server_port}"
    try:
        context = ssl.create_default_context(cafile=inbox.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise SmakomError(
            _("inbox.ca_file {ca_file} cannot be read ({exc}).").format(
                ca_file=inbox.ca_file, exc=exc
            )
        ) from None
    try:
        if inbox.security == "tls":
            return IMAPClient(
                inbox.host, inbox.server_port, ssl=True, ssl_context=context, timeout=inbox.timeout
            )
        client = IMAPClient(inbox.host, inbox.server_port, ssl=False, timeout=inbox.timeout)
        try:
            client.starttls(context)
        except BaseException:
            _close(client)
            raise
    except ssl.SSLCertVerificationError as exc:
        raise SmakomError(
            _(
                "the certificate of the mail server {where} could not be verified "
                "({verify_message}); check inbox.host, or set inbox.ca_file for a "
                "server with a private certificate."
            ).format(where=where, verify_message=exc.verify_message)
        ) from None
    except IMAPClientError as exc:
        raise SmakomError(
            _(
                "the mail server {where} does not offer STARTTLS ({describe}); try "
                'security = "tls" (port 993).'
            ).format(where=where, describe=_describe(exc))
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise SmakomError(
            _(
                "could not connect to the mail server {where} ({describe}); check "
                "inbox.host, inbox.port and inbox.security."
            ).format(where=where, describe=_describe(exc))
        ) from None
    return client


def check_login(inbox: InboxConfig, login: Login) -> None:
    """Connect and sign in to the mailbox, and nothing else."""
    client = connect(inbox)
    try:
        _login(client, inbox, login)
    except _CONNECTION_ERRORS as exc:
        raise SmakomError(
            _("the connection to {host} was lost ({describe}).").format(
                host=inbox.host, describe=_describe(exc)
            )
        ) from None
    finally:
        _close(client)


def _login(client: IMAPClient, inbox: InboxConfig, login: Login) -> None:
    """Sign in with the password, or with an OAuth2 token (XOAUTH2, Microsoft 365)."""
    try:
        if login.method == "xoauth2":
            client.oauth2_login(login.username, login.secret)
        elif login.secret.isascii():
            client.login(login.username, login.secret)
        else:
            # LOGIN can only carry ASCII; AUTHENTICATE PLAIN sends UTF-8 (RFC 4616), so a
            # Swedish password with å, ä or ö works.
            client.plain_login(login.username, login.secret)
    except LoginError:
        raise SmakomError(
            _("the mail server {host} refused the login for {username}: {remedy}").format(
                host=inbox.host, username=login.username, remedy=login.remedy
            )
        ) from None


class _Run:
    """One pass over the folder; keeps what was done so far for the report."""

    def __init__(
        self,
        config: Config,
        client: IMAPClient,
        log: InboxLog,
        deliveries: Deliveries,
        context: Context,
        suppression: SuppressionList,
        dry_run: bool,
        on_message: Callable[[Sorted], None] | None,
    ) -> None:
        self.inbox = config.inbox
        self.client = client
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
        self._folders: dict[str, str] = {}
        self._existing: set[str] | None = None
        self._namespace: tuple[str, str] | None = None
        self._by_message_id = log.by_message_id()

    def sort(self) -> None:
        folder = self.inbox.folder
        try:
            selected = self.client.select_folder(self._server_name(folder), readonly=self.dry_run)
        except IMAPClientError as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise
            raise SmakomError(
                _("the mailbox has no folder '{folder}' ({describe}); check inbox.folder.").format(
                    folder=folder, describe=_describe(exc)
                )
            ) from None
        uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
        uids = sorted(self.client.search("ALL"))
        seen = self.log.seen(folder, uidvalidity)
        self.already_seen = sum(1 for uid in uids if uid in seen)
        if not self.dry_run:
            self._finish_moves([seen[uid] for uid in uids if uid in seen])
        new = [uid for uid in uids if uid not in seen]
        for start in range(0, len(new), _FETCH_BATCH):
            batch = new[start : start + _FETCH_BATCH]
            fetched = self.client.fetch(batch, [f"BODY.PEEK[]<0.{_READ_BYTES}>", "FLAGS"])
            for uid in batch:
                data = fetched.get(uid)
                if data is None:
                    continue  # expunged by someone else since the search
                flags = {_flag(f) for f in data.get(b"FLAGS", ())}
                if SORTED_KEYWORD.lower() in flags:
                    self.already_seen += 1
                    continue
                raw = data.get(b"BODY[]<0>", b"")
                self._one(uidvalidity, uid, raw if isinstance(raw, bytes) else b"")

    def _one(self, uidvalidity: int, uid: int, raw: bytes) -> None:
        verdict = classify(raw, self.context)
        earlier = self._by_message_id.get(verdict.message_id) if verdict.message_id else None
        decision = decide(verdict, self.deliveries, self.log, self.inbox)
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
                self._move(uid, decision.to)
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

    def _finish_moves(self, entries: Sequence[Entry]) -> None:
        """Moves an earlier run recorded but did not get to (its connection was lost).

        A message with the keyword was copied already: it is only expunged, where the
        server can expunge that one UID, and otherwise stays, sorted, where it is.
        """
        pending = [entry for entry in entries if entry.action == "move"]
        if not pending:
            return
        flags = self.client.get_flags([entry.uid for entry in pending])
        for entry in pending:
            if SORTED_KEYWORD.lower() not in {_flag(f) for f in flags.get(entry.uid, ())}:
                self._move(entry.uid, entry.to)
                self.finished_moves += 1
            elif b"UIDPLUS" in self.client.capabilities():
                self.client.add_flags([entry.uid], [b"\\Deleted"])
                self.client.uid_expunge([entry.uid])
                self.finished_moves += 1

    def _move(self, uid: int, folder: str) -> None:
        """Move one message, never deleting it: MOVE, or COPY and expunge that UID alone."""
        target = self._server_folder(folder)
        capabilities = self.client.capabilities()
        if b"MOVE" in capabilities:
            self.client.move([uid], target)
            return
        self.client.copy([uid], target)
        if b"UIDPLUS" in capabilities:
            self.client.add_flags([uid], [b"\\Deleted", SORTED_KEYWORD.encode()])
            self.client.uid_expunge([uid])
        else:
            # A plain EXPUNGE would also remove what a person marked deleted: leave it.
            self.client.add_flags([uid], [b"\\Seen", SORTED_KEYWORD.encode()])

    def _server_name(self, name: str) -> str:
        """The folder's name on this server: its prefix ("INBOX." on some) and delimiter."""
        if self._namespace is None:
            self._namespace = _personal_namespace(self.client)
        prefix, delimiter = self._namespace
        parts = [part for part in name.split("/") if part]
        server_name = delimiter.join(parts) if delimiter else "/".join(parts)
        if prefix and not server_name.startswith(prefix) and server_name.upper() != "INBOX":
            server_name = prefix + server_name
        return server_name

    def _server_folder(self, name: str) -> str:
        """The folder to move mail to, by its name on this server, created when missing."""
        if name in self._folders:
            return self._folders[name]
        server_name = self._server_name(name)
        if self._existing is None:
            self._existing = {str(f[2]) for f in self.client.list_folders()}
        if server_name not in self._existing:
            self.client.create_folder(server_name)
            self.client.subscribe_folder(server_name)
            self._existing.add(server_name)
        self._folders[name] = server_name
        return server_name


def decide(verdict: Verdict, deliveries: Deliveries, log: InboxLog, inbox: InboxConfig) -> Decision:
    """What to do about one message; changes nothing."""
    if verdict.kind in ("hard", "soft"):
        return _decide_bounce(verdict, deliveries, log, inbox)
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
            _("unsubscribed"),
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
            _("unsubscribed"),
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
    verdict: Verdict, deliveries: Deliveries, log: InboxLog, inbox: InboxConfig
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
    addresses = tuple(address for address, _ in matched)
    issue = matched[0][1]
    if verdict.kind == "hard":
        return Decision(
            "move",
            inbox.bounce_folder,
            _("unsubscribed"),
            issue,
            addresses,
            unsubscribe=addresses,
            source="bounce",
            reason=_bounce_reason(verdict),
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
        effect = _("{effect}; unsubscribed").format(effect=effect)
    elif over:
        effect = _("{effect}; unsubscribed {addresses}").format(
            effect=effect, addresses=", ".join(over)
        )
    reason = _("soft bounces on {limit} issues in a row; the last: {bounce_reason}").format(
        limit=limit, bounce_reason=_bounce_reason(verdict)
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


def _bounce_reason(verdict: Verdict) -> str:
    if verdict.status and verdict.status not in verdict.reason:
        return f"{verdict.status} {verdict.reason}"
    return verdict.reason


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


def write_reports(config: Config, report: InboxReport, now: datetime) -> list[Path]:
    """The run's report, and each issue's bounces so far, as text files in `sent/`."""
    folder = config.journal_dir
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if report.items or report.interrupted:
        path = folder / f"inbox-{now:%Y%m%d-%H%M%S}.report.txt"
        path.write_text("\n".join(report_lines(report)) + "\n", encoding="utf-8")
        written.append(path)
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
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _bounce_line(entries: list[Entry]) -> str:
    hard = sum(e.kind == "hard" for e in entries)
    return _("Bounces read by smakom inbox: {hard} hard, {soft} soft").format(
        hard=hard, soft=len(entries) - hard
    )


SECTIONS: tuple[tuple[str, str], ...] = (
    ("hard", N_("Hard bounces")),
    ("soft", N_("Soft bounces")),
    ("blocked", N_("Sending blocked")),
    ("complaint", N_("Spam complaints")),
    ("unsubscribe", N_("Unsubscribe requests")),
    ("unreadable", N_("Unreadable")),
    ("auto-reply", N_("Auto-replies")),
    ("unknown", N_("Other mail")),
)


def report_lines(report: InboxReport) -> Iterator[str]:
    """The report as plain text lines: one section per kind, a line per message."""
    mode = _("dry run, nothing changed") if report.dry_run else _("sorted")
    yield _("smakom inbox: {host}, folder {folder} ({mode})").format(
        host=report.host, folder=report.folder, mode=mode
    )
    yield _(
        "New messages: {count}; seen before: {seen}; moves finished from an earlier run: {finished}"
    ).format(count=len(report.items), seen=report.already_seen, finished=report.finished_moves)
    if report.interrupted:
        yield _("Stopped early: {reason}").format(reason=report.interrupted)
    for kind, title in SECTIONS:
        items = [i for i in report.items if i.verdict.kind == kind]
        yield ""
        yield f"{_(title)}: {len(items)}"
        for item in items:
            yield "\t".join(row(item))


def row(item: Sorted) -> tuple[str, str, str, str]:
    """Addresses, what was done, why (the server's reply, or date and subject of what a
    person must read), and where it went."""
    verdict = item.verdict
    addresses = ", ".join(item.addresses or verdict.addresses) or verdict.sender or "?"
    where = item.to if item.action == "move" else _("stays in place")
    if verdict.kind == "unreadable" or item.action == "leave":
        when = f"{verdict.date:%Y-%m-%d %H:%M} " if verdict.date else ""
        why = when + (verdict.subject or _("(no subject)"))
    elif verdict.kind in ("hard", "soft", "blocked"):
        why = _bounce_reason(verdict)
    else:
        why = verdict.reason
    effect = verdict.reason if verdict.kind == "unreadable" else item.effect
    if item.repeat:
        effect = _("{effect} (sorted before, as another copy)").format(effect=effect)
    return addresses, effect, why, where


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


def _is_address(text: str) -> bool:
    try:
        parse_address(text)
    except SmakomError:
        return False
    return True


def _personal_namespace(client: IMAPClient) -> tuple[str, str]:
    """The prefix and hierarchy delimiter of the user's own folders ("", "/" or "INBOX.", ".")."""
    try:
        personal = client.namespace().personal
    except IMAPClientError:
        personal = None
    if personal:
        prefix, delimiter = personal[0]
        return _str(prefix), _str(delimiter)
    folders = client.list_folders(directory="", pattern="")
    return "", _str(folders[0][1]) if folders else "/"


def _str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _flag(value: object) -> str:
    return _str(value).lower()


def _describe(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return text or type(exc).__name__


def _close(client: IMAPClient) -> None:
    """Log out politely; a connection already lost needs no goodbye."""
    try:
        client.logout()
    except (IMAPClientError, *_CONNECTION_ERRORS):
        try:
            client.shutdown()
        except (IMAPClientError, *_CONNECTION_ERRORS):
            return
