"""`smakom inbox` against a real Dovecot: every kind of returned mail sorted, nothing deleted."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.audience.references import message_id
from smakom_cli.cli import app
from smakom_cli.config import load_config
from smakom_cli.delivery.journal import Journal, JournalHeader
from smakom_cli.delivery.outcome import Outcome
from smakom_cli.returns.inbox import Sorted, sort_inbox
from smakom_cli.signin.credentials import lookup_imap_password
from smakom_cli.signin.resolver import Login
from tests.conftest import FIXTURES
from tests.imap_server import PASSWORD, DovecotServer, require_dovecot_2_3, running_dovecot
from tests.returns.test_bounces import SECRET
from tests.smtp_server import HOST
from tests.tools import require_program

BOUNCES = FIXTURES / "bounces"
STUDSAR = "smakom.studsar"  # the test server's delimiter is "."
AVREG = "smakom.avregistreringar"
AUTOSVAR = "smakom.autosvar"

# Every fixture: the folder it ends in, and the address it unsubscribes (and how), if any.
EXPECTED: dict[str, tuple[str, str, str]] = {
    "exchange-online-ndr.eml": (STUDSAR, "anna.aberg@example.com", "bounce"),
    "gmail-dsn.eml": (STUDSAR, "bjorn.ostlund@example.org", "bounce"),
    "postfix-dsn.eml": (STUDSAR, "cecilia.arlig@example.com", "bounce"),
    "exim-bounce.eml": (STUDSAR, "david.sjostrom@example.org", "bounce"),
    "qmail-bounce.eml": (STUDSAR, "eva.lindqvist@example.com", "bounce"),
    "headers-only-bounce.eml": (STUDSAR, "fredrik.hakansson@example.org", "bounce"),
    "soft-mailbox-full.eml": (STUDSAR, "", ""),
    "out-of-office-sv.eml": (AUTOSVAR, "", ""),
    "out-of-office-en.eml": (AUTOSVAR, "", ""),
    "yahoo-bounce.eml": (STUDSAR, "rolf.sjogren@example.org", "bounce"),
    "qmail-local-bounce.eml": (STUDSAR, "sara.hagglund@example.com", "bounce"),
    "exchange-html-ndr.eml": (STUDSAR, "tomas.narhi@example.org", "bounce"),
    "exchange-blocked-ndr.eml": (STUDSAR, "", ""),
    "arf-complaint.eml": (AVREG, "per.akesson@example.org", "complaint"),
    "out-of-office-latin1.eml": (AUTOSVAR, "", ""),
    "out-of-office-utf8-raw.eml": (AUTOSVAR, "", ""),
    "unsubscribe-mailto.eml": (AVREG, "johan.alvsjo@example.org", "mail"),
    "unsubscribe-with-token.eml": (AVREG, "karin.ohman@example.com", "mail"),
    "unsubscribe-without-token.eml": ("INBOX", "", ""),
    "forwarded-request.eml": ("INBOX", "", ""),
    "ordinary-reply.eml": ("INBOX", "", ""),
    "bounce-of-office-mail.eml": ("INBOX", "", ""),
}


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    """One Dovecot for the module (it starts in a tenth of a second); a user per test."""
    from tests.smtp_server import make_certificates

    dovecot = require_program("dovecot", "dovecot-imapd")
    doveadm = require_program("doveadm", "dovecot-core")
    require_dovecot_2_3(dovecot)
    certificates = make_certificates(tmp_path_factory.mktemp("imap-certificates"))
    with running_dovecot(dovecot, doveadm, certificates) as server:
        yield server


@pytest.fixture
def mailbox(dovecot: DovecotServer, newsletter: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty mailbox, named in the example's smakom.toml; the example issue sent to all."""
    user = dovecot.new_user()
    _configure(newsletter, dovecot, user)
    monkeypatch.setenv("SMAKOM_IMAP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", SECRET.decode())
    _journal(newsletter, "2021-01", _valid_subscribers(newsletter))
    return user


def _configure(newsletter: Path, dovecot: DovecotServer, user: str, **keys: object) -> None:
    values: dict[str, object] = {
        "host": HOST,
        "port": dovecot.imaps_port,
        "security": "tls",
        "username": user,
        "ca_file": str(dovecot.ca_file),
        "timeout": 10,
    }
    values |= keys
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    config = newsletter / "smakom.toml"
    # The [inbox] table goes last, so a test can write it again with other values.
    text = config.read_text(encoding="utf-8").partition("\n[inbox]\n")[0]
    config.write_text(text + "\n[inbox]\n" + "\n".join(lines) + "\n", encoding="utf-8")


def _valid_subscribers(folder: Path) -> list[str]:
    rows = (folder / "subscribers.csv").read_text(encoding="utf-8").splitlines()[1:]
    keys = [row.split(";")[0].strip().lower() for row in rows]
    return [k for k in dict.fromkeys(keys) if re.fullmatch(r"[^@\s]+@[^@\s]+\.\w+", k)]


def _journal(folder: Path, issue: str, keys: list[str]) -> None:
    """The journal a send of `issue` to these addresses leaves in sent/."""
    header = JournalHeader(issue, f"Nyhetsbrev {issue}", issue * 8)
    with Journal.open(
        folder / "sent" / f"{issue}.jsonl", header, list_name="subscribers.csv"
    ) as journal:
        for key in keys:
            journal.mark_ending(journal.mark_in_flight(key))
            journal.record(Outcome.SENT, key)
        journal.mark_complete()


def _append(dovecot: DovecotServer, user: str, messages: list[bytes]) -> None:
    with dovecot.client(user) as client:
        for raw in messages:
            client.append("INBOX", raw)


def _where(dovecot: DovecotServer, user: str) -> dict[str, tuple[str, frozenset[bytes]]]:
    """Each message's Message-ID → its folder and flags, over every folder of the mailbox."""
    found: dict[str, tuple[str, frozenset[bytes]]] = {}
    with dovecot.client(user) as client:
        for flags, _delimiter, name in client.list_folders():
            if b"\\Noselect" in flags:
                continue
            client.select_folder(name, readonly=True)
            data = client.fetch(
                client.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]", "FLAGS"]
            )
            for item in data.values():
                header = item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
                key = header.partition(":")[2].strip()
                assert key not in found, f"{key} is in two folders"
                found[key] = (name, frozenset(item[b"FLAGS"]))
    return found


def _message_id(raw: bytes) -> str:
    match = re.search(rb"^Message-I[Dd]: (\S+)", raw, re.MULTILINE)
    assert match
    return match.group(1).decode()


def _unsubscribed(folder: Path) -> list[dict[str, str]]:
    path = folder / "unsubscribed.csv"
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def _report(folder: Path) -> str:
    """The text report of the one run so far."""
    (report,) = (folder / "sent").glob("inbox-*.report.txt")
    return report.read_text(encoding="utf-8")


def _inbox(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["inbox", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_kind_of_mail_ends_in_its_place(
    dovecot: DovecotServer, mailbox: str, newsletter: Path, runner: CliRunner
) -> None:
    """Bounces, auto-replies and requests are sorted; real replies stay; a rerun does nothing."""
    fixtures = {name: (BOUNCES / name).read_bytes() for name in EXPECTED}
    _append(dovecot, mailbox, list(fixtures.values()))
    before = _unsubscribed(newsletter)

    output = _inbox(runner)

    where = _where(dovecot, mailbox)
    for name, (folder, _address, _source) in EXPECTED.items():
        place, flags = where[_message_id(fixtures[name])]
        assert place == folder, name
        assert b"\\Deleted" not in flags, name
        if folder == "INBOX":
            assert b"\\Seen" not in flags and b"$SmakomSorted" not in flags, name
    rows = _unsubscribed(newsletter)[len(before) :]
    expected = {(a, s) for _f, a, s in EXPECTED.values() if a}
    assert {(r["email"], r["source"]) for r in rows} == expected
    assert len(rows) == len(expected)
    anna = next(r for r in rows if r["email"] == "anna.aberg@example.com")
    assert "5.1.10" in anna["reason"] and anna["when"] == "2021-01-05T08:01:12Z"
    johan = next(r for r in rows if r["email"] == "johan.alvsjo@example.org")
    assert "unsubscribe johan.alvsjo@example.org" in johan["reason"]
    assert "22 new messages: hard bounces 9, soft bounces 1, sending blocked 1" in output
    strangers = "bounces and complaints about addresses never sent the newsletter 1"
    assert f"spam complaints 1, {strangers}, unsubscribe requests 3" in output
    assert "Totals: unsubscribed 12; moved 18; left 4 for a person" in output
    assert "lars.privat@exampl" in output  # the table, whose cells wrap
    text = _report(newsletter)
    assert "counted: 1 of 3 issues in a row" in text
    assert "lars.privat@example.net" in text and "a person should check it" in text
    assert "maria.soderberg@example.com\tleft for a person: writes about someone else" in text
    assert "never sent this newsletter: left for a person" in text
    assert "Hard bounces: 9" in text and "Sending blocked: 1" in text
    assert "Bounces and complaints about addresses never sent the newsletter: 1" in text
    # What is left for a person says when it came and what it is about, to find it by.
    assert "olivia.strom@example.com\tleft in place\t2021-01-06 14:45 SV: SmåKom" in text
    bounces = (newsletter / "sent" / "2021-01.bounces.txt").read_text(encoding="utf-8")
    assert "Bounces read by smakom inbox: 9 hard, 1 soft" in bounces
    assert "qarin.ek" not in bounces
    assert "nobody was unsubscribed for it" in text
    reasons = {r["email"]: r["reason"] for r in rows}
    assert "(#5.1.1)" in reasons["sara.hagglund@example.com"]
    assert "This user doesn't have" in reasons["rolf.sjogren@example.org"]
    assert "<" not in reasons["tomas.narhi@example.org"]

    state = (newsletter / "inbox.jsonl").read_bytes()
    csv_bytes = (newsletter / "unsubscribed.csv").read_bytes()
    again = _inbox(runner)
    assert "No new mail in INBOX" in again
    assert "4 messages were sorted before and left alone" in again  # the 4 that stay
    assert (newsletter / "inbox.jsonl").read_bytes() == state
    assert (newsletter / "unsubscribed.csv").read_bytes() == csv_bytes
    assert _where(dovecot, mailbox) == where

    result = runner.invoke(app, ["send", "issues/2021-01.md", "--dry-run"])
    assert result.exit_code == 0, result.output
    written = " ".join(p.name for p in (newsletter / "outbox" / "2021-01").glob("*.eml"))
    for _folder, address, _source in EXPECTED.values():
        if address:
            assert address not in written
    for stays in ("gunilla.nystrom@example.com", "nils.backman@example.org", "olivia.strom"):
        assert stays in written


def _reply(subject: str, body: str, to: str, number: int) -> bytes:
    """A reader's short mail, from a subscriber, as a mail program sends it."""
    message = EmailMessage()
    message["From"] = "Gunilla <gunilla.nystrom@example.com>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Thu, 7 Jan 2021 10:00:00 +0100"
    message["Message-ID"] = f"<reply-{number}@example.com>"
    message.set_content(body)
    return message.as_bytes().replace(b"\n", b"\r\n")


def _nested(depth: int) -> bytes:
    inner = b"Subject: inne\r\n\r\nhej\r\n"
    for _ in range(depth):
        inner = b"Content-Type: message/rfc822\r\n\r\n" + inner
    head = b"From: x@example.net\r\nSubject: Djupt inb\xc3\xa4ddat\r\n"  # raw 8-bit, as sent
    head += b"Message-ID: <deep@example.net>\r\nDate: Thu, 7 Jan 2021 09:00:00 +0100\r\n"
    return head + inner


def test_one_unreadable_message_does_not_stop_the_sorting(
    dovecot: DovecotServer, mailbox: str, newsletter: Path, runner: CliRunner
) -> None:
    """A message nested 1,000 deep is moved aside once and named; the mail after it is
    sorted; replies asking to stay unsubscribe nobody; the mailto request does."""
    stay = [
        (
            "Re: Nyhetsbrev Januari 2021",
            "Avregistrera mig INTE, jag vill gärna fortsätta få brevet!",
        ),
        ("Re: Nyhetsbrev", "länken för att avregistrera sig fungerar inte för min kollega"),
        ("Unsubscribe-länken i förra brevet", "jag vill vara kvar på listan"),
    ]
    replies = [_reply(s, b, "nyhetsbrev@smakom.se", n) for n, (s, b) in enumerate(stay)]
    replies += [_reply(s, b, "avregistrera@smakom.se", n + 3) for n, (s, b) in enumerate(stay)]
    request = _reply("unsubscribe gunilla.nystrom@example.com", "", "avregistrera@smakom.se", 9)
    gmail = (BOUNCES / "gmail-dsn.eml").read_bytes()
    _append(dovecot, mailbox, [_nested(1000), *replies, gmail])
    before = _unsubscribed(newsletter)

    output = _inbox(runner)

    where = _where(dovecot, mailbox)
    assert where["<deep@example.net>"][0] == "smakom.olasliga"
    assert where[_message_id(gmail)][0] == STUDSAR
    assert all(where[_message_id(raw)][0] == "INBOX" for raw in replies)
    assert [r["email"] for r in _unsubscribed(newsletter)[len(before) :]] == [
        "bjorn.ostlund@example.org"
    ]
    assert "Traceback" not in output
    text = _report(newsletter)
    assert "Djupt inbäddat" in text and "nested" in text
    assert text.count("a person should read it") == 6

    _append(dovecot, mailbox, [request])
    again = _inbox(runner)
    assert "1 new message:" in again
    assert _unsubscribed(newsletter)[-1]["email"] == "gunilla.nystrom@example.com"
    log = (newsletter / "inbox.jsonl").read_text(encoding="utf-8")
    assert log.count('"unreadable"') == 1


def test_dry_run_changes_nothing(
    dovecot: DovecotServer, mailbox: str, newsletter: Path, runner: CliRunner
) -> None:
    """--dry-run lists what would happen; no file, flag, folder or message changes."""
    _append(dovecot, mailbox, [(BOUNCES / name).read_bytes() for name in EXPECTED])
    before = {p: p.read_bytes() for p in newsletter.rglob("*") if p.is_file()}
    where = _where(dovecot, mailbox)

    output = _inbox(runner, "--dry-run")

    assert "Dry run, nothing was changed" in output
    assert "22 new messages: hard bounces 9" in output
    assert "Totals: would unsubscribe 12; would move 18; would leave 4 for a person" in output
    assert {p: p.read_bytes() for p in newsletter.rglob("*") if p.is_file()} == before
    assert _where(dovecot, mailbox) == where
    with dovecot.client(mailbox) as client:
        assert [f[2] for f in client.list_folders()] == ["INBOX"]


def test_a_dropped_connection_is_finished_by_the_next_run(
    dovecot: DovecotServer, mailbox: str, newsletter: Path, runner: CliRunner
) -> None:
    """The server drops the connection mid-run: nothing half-recorded; the next run finishes."""
    names = ["gmail-dsn.eml", "postfix-dsn.eml", "unsubscribe-mailto.eml", "exim-bounce.eml"]
    fixtures = [(BOUNCES / name).read_bytes() for name in names]
    _append(dovecot, mailbox, fixtures)
    config = load_config(newsletter / "smakom.toml")
    password = lookup_imap_password(mailbox, {"SMAKOM_IMAP_PASSWORD": PASSWORD})
    assert password

    def drop(item: Sorted) -> None:
        dovecot.kick(mailbox)

    report = sort_inbox(config, Login(mailbox, password), SECRET, dry_run=False, on_message=drop)

    assert report.interrupted and "run `smakom inbox` again" in report.interrupted
    assert len(report.items) == 1
    # The message after the drop had its effect and its line recorded, not yet its move.
    log = [json.loads(line) for line in (newsletter / "inbox.jsonl").read_text().splitlines()]
    assert len(log) == 2
    assert {r["email"] for r in _unsubscribed(newsletter)} >= {
        "bjorn.ostlund@example.org",
        "cecilia.arlig@example.com",
    }

    output = _inbox(runner)

    assert "1 move an earlier run had recorded was finished" in output
    assert "2 new messages" in output
    where = _where(dovecot, mailbox)
    assert [where[_message_id(raw)][0] for raw in fixtures] == [STUDSAR, STUDSAR, AVREG, STUDSAR]
    rows = [r["email"] for r in _unsubscribed(newsletter)]
    for address in ("bjorn.ostlund", "cecilia.arlig", "johan.alvsjo", "david.sjostrom"):
        assert sum(r.startswith(address) for r in rows) == 1
    assert len((newsletter / "inbox.jsonl").read_text().splitlines()) == 4


def test_the_same_message_twice_counts_once(
    dovecot: DovecotServer, mailbox: str, newsletter: Path, runner: CliRunner
) -> None:
    """Two copies of one Message-ID (a rebuilt mailbox, a re-delivery) have one effect."""
    bounce = (BOUNCES / "gmail-dsn.eml").read_bytes()
    reply = (BOUNCES / "ordinary-reply.eml").read_bytes()
    _append(dovecot, mailbox, [bounce, reply, bounce, reply])

    output = _inbox(runner)

    assert "3 new messages" in output and "1 message was sorted before" in output
    assert "sorted before, as another copy" in _report(newsletter)
    rows = [r["email"] for r in _unsubscribed(newsletter)]
    assert rows.count("bjorn.ostlund@example.org") == 1
    with dovecot.client(mailbox) as client:
        client.select_folder(STUDSAR, readonly=True)
        assert len(client.search("ALL")) == 2
        client.select_folder("INBOX", readonly=True)
        assert len(client.search("ALL")) == 2


def _soft_bounce(address: str, issue: str) -> bytes:
    """The "mailbox full" fixture, for another address and issue."""
    raw = (BOUNCES / "soft-mailbox-full.eml").read_bytes()
    reference = message_id(SECRET, issue, address, "smakom.se")
    raw = re.sub(rb"Message-ID: <[^>]*@smakom\.se>", b"Message-ID: " + reference.encode(), raw)
    raw = raw.replace(b"gunilla.nystrom@example.com", address.encode())
    unique = f"<soft-{issue}-{address}@mx.google.com>".encode()
    pattern = rb"^Message-ID: <[^>]*GMR@mx.google.com>"
    return re.sub(pattern, b"Message-ID: " + unique, raw, count=1, flags=re.MULTILINE)


def test_soft_bounces_on_three_issues_in_a_row_suppress(
    dovecot: DovecotServer, mailbox: str, newsletter: Path, runner: CliRunner
) -> None:
    """Mailbox full three issues running: suppressed; a delivery in between starts over."""
    gunilla, hans = "gunilla.nystrom@example.com", "hans.goransson@example.org"
    for issue in ("2020-11", "2020-12"):
        _journal(newsletter, issue, [gunilla, hans])
    _append(
        dovecot,
        mailbox,
        [
            _soft_bounce(gunilla, "2020-11"),
            _soft_bounce(hans, "2020-11"),
            _soft_bounce(gunilla, "2020-12"),
            _soft_bounce(gunilla, "2020-12"),  # a second bounce of the same issue: once
            _soft_bounce(gunilla, "2021-01"),
            _soft_bounce(hans, "2021-01"),
        ],
    )
    config = load_config(newsletter / "smakom.toml")
    preview = sort_inbox(config, Login(config.inbox.username, PASSWORD), SECRET, dry_run=True)
    assert preview.items[4].effect == "counted: 3 of 3 issues in a row; would unsubscribe"
    assert preview.items[4].suppressed == (gunilla,)
    assert not (newsletter / "inbox.jsonl").exists()

    output = _inbox(runner)

    assert "6 new messages" in output
    text = _report(newsletter)
    assert f"{gunilla}\tcounted: 3 of 3 issues in a row; unsubscribed" in text
    assert f"{hans}\tcounted: 1 of 3 issues in a row" in text
    rows = _unsubscribed(newsletter)
    assert [(r["email"], r["source"]) for r in rows if r["email"] in (gunilla, hans)] == [
        (gunilla, "bounce")
    ]
    assert "soft bounces on 3 issues in a row" in rows[-1]["reason"]


def _old_server_user(
    dovecot: DovecotServer, newsletter: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> str:
    user = dovecot.new_user(kind)
    _configure(newsletter, dovecot, user)
    monkeypatch.setenv("SMAKOM_IMAP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", SECRET.decode())
    _journal(newsletter, "2021-01", _valid_subscribers(newsletter))
    return user


def test_without_move_one_uid_is_expunged(
    dovecot: DovecotServer, newsletter: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without MOVE: copied, then that UID alone expunged; a message marked deleted stays."""
    user = _old_server_user(dovecot, newsletter, monkeypatch, "no-move")
    raw = (BOUNCES / "gmail-dsn.eml").read_bytes()
    reply = (BOUNCES / "ordinary-reply.eml").read_bytes()
    _append(dovecot, user, [raw, reply])
    with dovecot.client(user) as client:
        client.select_folder("INBOX")
        person_deleted = client.search(["HEADER", "Message-ID", _message_id(reply)])
        client.add_flags(person_deleted, [b"\\Deleted"])

    _inbox(runner)

    where = _where(dovecot, user)
    assert where[_message_id(raw)][0] == STUDSAR
    assert where[_message_id(reply)] == ("INBOX", frozenset({b"\\Deleted"}))


def test_without_move_or_uidplus_the_original_is_marked_not_deleted(
    dovecot: DovecotServer, newsletter: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With neither MOVE nor UIDPLUS, handled mail is copied and marked, never expunged."""
    user = _old_server_user(dovecot, newsletter, monkeypatch, "old")
    raw = (BOUNCES / "gmail-dsn.eml").read_bytes()
    reply = (BOUNCES / "ordinary-reply.eml").read_bytes()
    _append(dovecot, user, [raw, reply])

    _inbox(runner)
    state = (newsletter / "inbox.jsonl").read_bytes()
    _inbox(runner)

    assert (newsletter / "inbox.jsonl").read_bytes() == state
    with dovecot.client(user) as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search("ALL"))
        assert sorted(b"$SmakomSorted" in f for f in flags.values()) == [False, True]
        assert not any(b"\\Deleted" in f for f in flags.values())
        client.select_folder(STUDSAR, readonly=True)
        assert len(client.search("ALL")) == 1


def test_another_folder_is_read_by_its_name_on_the_server(
    dovecot: DovecotServer, mailbox: str, newsletter: Path, runner: CliRunner
) -> None:
    """inbox.folder "Retur/Nyhetsbrev" is the server's "Retur.Nyhetsbrev"; INBOX is not read."""
    _configure(newsletter, dovecot, mailbox, folder="Retur/Nyhetsbrev")
    raw = (BOUNCES / "gmail-dsn.eml").read_bytes()
    other = (BOUNCES / "postfix-dsn.eml").read_bytes()
    with dovecot.client(mailbox) as client:
        client.create_folder("Retur.Nyhetsbrev")
        client.append("Retur.Nyhetsbrev", raw)
        client.append("INBOX", other)
    assert "1 new message" in _inbox(runner)
    where = _where(dovecot, mailbox)
    assert where[_message_id(raw)][0] == STUDSAR
    assert where[_message_id(other)][0] == "INBOX"


def test_starttls_and_a_wrong_certificate(
    dovecot: DovecotServer, mailbox: str, newsletter: Path, runner: CliRunner
) -> None:
    """STARTTLS on port 143 works; a certificate from another CA is refused in one line."""
    _configure(newsletter, dovecot, mailbox, security="starttls", port=dovecot.imap_port)
    _append(dovecot, mailbox, [(BOUNCES / "ordinary-reply.eml").read_bytes()])
    assert "1 new message" in _inbox(runner)

    other_ca = dovecot.ca_file.with_name("other-ca.pem")
    (newsletter / "other-ca.pem").write_bytes(other_ca.read_bytes())
    for security, port in (("starttls", dovecot.imap_port), ("tls", dovecot.imaps_port)):
        _configure(
            newsletter, dovecot, mailbox, ca_file="other-ca.pem", security=security, port=port
        )
        result = runner.invoke(app, ["inbox"])
        assert result.exit_code == 1
        assert "could not be verified" in result.output and "ca_file" in result.output


def test_login_inbox_keeps_the_password_in_the_keyring(
    dovecot: DovecotServer, mailbox: str, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`smakom login --inbox` stores the mailbox password; `smakom inbox` then uses it."""
    monkeypatch.delenv("SMAKOM_IMAP_PASSWORD")
    result = runner.invoke(app, ["inbox"])
    assert result.exit_code == 1 and "smakom login --inbox" in result.output
    result = runner.invoke(app, ["login", "--inbox"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert lookup_imap_password(mailbox, {}) == PASSWORD
    assert "keeps passwords unencrypted" in result.output
    assert "SMAKOM_IMAP_PASSWORD" in result.output
    result = runner.invoke(app, ["login", "--inbox", "--check"])
    assert result.exit_code == 0, result.output
    assert f"Logged in to the mailbox 127.0.0.1:{dovecot.imaps_port}" in result.output
    assert "No new mail in INBOX" in _inbox(runner)
    result = runner.invoke(app, ["logout", "--inbox"])
    assert result.exit_code == 0 and lookup_imap_password(mailbox, {}) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('security = "none"', "'inbox.security' must be one of tls, starttls"),
        ("port = 70000", "'inbox.port' must be a whole number from 0 to 65535"),
        ("soft_bounce_limit = 0", "'inbox.soft_bounce_limit' must be a whole number from 1 to 100"),
        ('bounce_folder = "INBOX"', "cannot also be the folder"),
        ("timeout = -1", "'inbox.timeout'"),
        ('folders = "x"', "unknown key 'inbox.folders'"),
    ],
)
def test_the_inbox_table_is_checked(
    newsletter: Path, runner: CliRunner, line: str, message: str
) -> None:
    """Each wrong [inbox] value is one red line naming the key."""
    config = newsletter / "smakom.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + f'\n[inbox]\nhost = "imap.example.org"\n{line}\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["inbox"])
    assert result.exit_code == 1
    assert message in result.output


def test_without_an_inbox_table_it_says_what_to_add(newsletter: Path, runner: CliRunner) -> None:
    """With no [inbox] host and username, the command names what smakom.toml needs."""
    result = runner.invoke(app, ["inbox"])
    assert result.exit_code == 1
    assert "[inbox] needs host and username" in result.output


# Last in the module: after a refused password Dovecot makes the next logins from the same
# address wait (its auth penalty), which would slow every test after this one.
def test_a_wrong_password_is_one_line(
    dovecot: DovecotServer, mailbox: str, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused login says how to store the right password, and shows no password."""
    monkeypatch.setenv("SMAKOM_IMAP_PASSWORD", "fel-lösenord")
    result = runner.invoke(app, ["inbox"])
    assert result.exit_code == 1
    assert "refused the login" in result.output and "smakom login --inbox" in result.output
    assert "fel-lösenord" not in result.output
