"""inbox.jsonl, read strictly, and what it counts: soft bounces per issue, reset by a delivery."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smakom_cli.config import InboxConfig
from smakom_cli.delivery.journal import Journal, JournalHeader
from smakom_cli.delivery.outcome import Outcome
from smakom_cli.errors import SmakomError
from smakom_cli.returns.bounces import Kind, Verdict
from smakom_cli.returns.inbox_log import Entry, InboxLog, parse
from smakom_cli.returns.sorting import Deliveries, decide, soft_bounce_count

ANNA = "anna.aberg@example.com"


def entry(uid: int, kind: Kind = "soft", issue: str = "2021-01", address: str = ANNA) -> Entry:
    return Entry(
        time="2021-01-05T09:00:00Z",
        folder="INBOX",
        uidvalidity=7,
        uid=uid,
        message_id=f"<m{uid}@example.com>",
        kind=kind,
        addresses=(address,),
        issue=issue,
        reason="552 5.2.2 mailbox full",
        action="move",
        to="smakom/studsar",
    )


def test_entries_survive_a_round_trip(tmp_path: Path) -> None:
    """What is appended is read back the same, in order, with å ä ö intact."""
    path = tmp_path / "inbox.jsonl"
    log = InboxLog.read(path)
    assert log.entries == ()
    first, second = entry(1), entry(2, kind="hard", address="åsa.hedström@example.com")
    log = log.append(first).append(second)
    assert InboxLog.read(path).entries == (first, second) == log.entries
    assert "åsa" in path.read_text(encoding="utf-8")
    assert set(log.seen("INBOX", 7)) == {1, 2}
    assert log.seen("INBOX", 8) == {}


@pytest.mark.skipif(os.name == "nt", reason="Windows has no POSIX permission bits")
def test_the_log_stays_private_and_keeps_permissions_given_it(tmp_path: Path) -> None:
    """A new inbox log is readable by its owner only; one opened up to the office stays so."""
    path = tmp_path / "inbox.jsonl"
    InboxLog.read(path).append(entry(1))
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o640)
    InboxLog.read(path).append(entry(2))
    assert path.stat().st_mode & 0o777 == 0o640
    assert [e.uid for e in InboxLog.read(path).entries] == [1, 2]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2"),
        ('{"uid": 1}', "is missing"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_a_damaged_line_is_an_error_naming_it(tmp_path: Path, line: str, message: str) -> None:
    """A line a person broke stops the command with its number; nothing is guessed."""
    path = tmp_path / "inbox.jsonl"
    InboxLog.read(path).append(entry(1))
    with path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")
    with pytest.raises(SmakomError, match=message) as raised:
        InboxLog.read(path)
    assert "inbox.jsonl line 2" in str(raised.value)
    with pytest.raises(SmakomError):
        InboxLog.read(path).append(entry(3))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("kind", "bounce", "the kind must be"),
        ("action", "delete", "the action must be"),
        ("uid", "5", "wrong type"),
        ("uid", True, "wrong type"),
        ("uid", 0, "positive"),
        ("addresses", ["nobody"], "e-mail addresses"),
        ("to", "", "needs the folder"),
        ("extra", 1, "unknown key"),
    ],
)
def test_wrong_values_are_named(key: str, value: object, message: str) -> None:
    """Each field is checked: its type, and the words smakom writes there."""
    record = json.loads(json.dumps(entry(1).__dict__))
    record[key] = value
    with pytest.raises(SmakomError, match=message):
        parse(json.dumps(record).encode(), "inbox.jsonl")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_entries_or_one_clear_error(data: bytes) -> None:
    """Whatever the file holds, it is read whole or refused with one sentence."""
    try:
        entries = parse(data, "inbox.jsonl")
    except SmakomError as exc:
        assert str(exc).startswith("inbox.jsonl")
    else:
        assert all(isinstance(e, Entry) for e in entries)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "time": st.text(max_size=5),
                "folder": st.text(max_size=5),
                "uidvalidity": st.integers(-2, 5),
                "uid": st.integers(-1, 5),
                "message_id": st.text(max_size=5),
                "kind": st.sampled_from(["hard", "soft", "unknown", "x"]),
                "addresses": st.lists(st.sampled_from(["a@b.se", "nej"]), max_size=2),
                "issue": st.text(max_size=5),
                "reason": st.text(max_size=5),
                "action": st.sampled_from(["move", "leave", "x"]),
                "to": st.sampled_from(["", "f"]),
            }
        ),
        max_size=4,
    )
)
def test_plausible_records_are_read_or_refused(records: list[dict[str, object]]) -> None:
    """Near-valid records are either taken exactly as written or refused, never half read."""
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    try:
        entries = parse(data, "inbox.jsonl")
    except SmakomError:
        return
    assert len(entries) == len(records)
    assert [e.uid for e in entries] == [r["uid"] for r in records]


def _deliveries(tmp_path: Path, issues: dict[str, list[str]]) -> Deliveries:
    """Journals in sent/ as a send writes them, one per issue."""
    sent = tmp_path / "sent"
    for issue, keys in issues.items():
        header = JournalHeader(issue, f"Nyhetsbrev {issue}", issue * 8)
        with Journal.open(sent / f"{issue}.jsonl", header, list_name="subscribers.csv") as journal:
            for key in keys:
                journal.mark_ending(journal.mark_in_flight(key))
                journal.record(Outcome.SENT, key)
    return Deliveries.read(sent)


def test_soft_bounces_count_issues_in_a_row(tmp_path: Path) -> None:
    """Three issues in a row that bounced softly reach a limit of 3; once per issue."""
    deliveries = _deliveries(tmp_path, {"2020-11": [ANNA], "2020-12": [ANNA], "2021-01": [ANNA]})
    log = InboxLog(tmp_path / "inbox.jsonl", (entry(1, issue="2020-11"), entry(2, issue="2020-11")))
    assert soft_bounce_count(ANNA, "2020-12", deliveries, log) == 0
    log = InboxLog(log.path, (*log.entries, entry(3, issue="2020-12")))
    assert soft_bounce_count(ANNA, "2021-01", deliveries, log) == 3


def test_a_delivery_without_a_bounce_resets_the_count(tmp_path: Path) -> None:
    """An issue that went out and did not come back ends the row of soft bounces."""
    deliveries = _deliveries(
        tmp_path, {"2020-11": [ANNA], "2020-12": [ANNA], "2021-01": [ANNA], "2021-02": [ANNA]}
    )
    log = InboxLog(tmp_path / "x", (entry(1, issue="2020-11"), entry(2, issue="2021-01")))
    assert soft_bounce_count(ANNA, "2021-02", deliveries, log) == 2
    log = InboxLog(tmp_path / "x", (entry(1, issue="2020-11"),))
    assert soft_bounce_count(ANNA, "2020-12", deliveries, log) == 0


def test_a_bounce_for_an_address_never_sent_is_left_alone(tmp_path: Path) -> None:
    """A bounce of the office's own mail, or of an issue that address never got, is not acted on."""
    deliveries = _deliveries(tmp_path, {"2021-01": [ANNA]})
    log = InboxLog(tmp_path / "x", ())
    hard = Verdict(kind="hard", addresses=("someone@else.se",), reason="550 5.1.1 unknown")
    decision = decide(hard, deliveries, log, InboxConfig())
    assert (decision.action, decision.unsubscribe) == ("leave", ())
    other_issue = Verdict(kind="hard", addresses=(ANNA,), reason="550", issue="2020-06")
    assert decide(other_issue, deliveries, log, InboxConfig()).action == "leave"
    ours = Verdict(kind="hard", addresses=(ANNA,), reason="550", issue="2021-01")
    decision = decide(ours, deliveries, log, InboxConfig())
    assert (decision.action, decision.unsubscribe, decision.source) == ("move", (ANNA,), "bounce")


def test_a_last_line_cut_short_by_a_crash_is_dropped_at_the_next_append(tmp_path: Path) -> None:
    """A power cut mid-append leaves half a line: the rest is read; the next line is whole."""
    path = tmp_path / "inbox.jsonl"
    InboxLog.read(path).append(entry(1)).append(entry(2))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 40])

    log = InboxLog.read(path)

    assert [e.uid for e in log.entries] == [1]
    log.append(entry(3))
    assert [e.uid for e in InboxLog.read(path).entries] == [1, 3]
    assert path.read_bytes().endswith(b"\n") and path.read_bytes().count(b"\n") == 2


def test_a_whole_last_line_without_its_line_end_is_kept(tmp_path: Path) -> None:
    """An editor that drops the final line end loses nothing; the next entry goes below it."""
    path = tmp_path / "inbox.jsonl"
    InboxLog.read(path).append(entry(1))
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    InboxLog.read(path).append(entry(2))
    assert [e.uid for e in InboxLog.read(path).entries] == [1, 2]


def test_an_append_leaves_the_lines_before_it_as_they_were(tmp_path: Path) -> None:
    """Appending writes only the new line: the file before it is byte for byte unchanged."""
    path = tmp_path / "inbox.jsonl"
    log = InboxLog.read(path)
    for uid in range(1, 50):
        log.append(entry(uid))
    before = path.read_bytes()
    InboxLog.read(path).append(entry(50))
    assert path.read_bytes().startswith(before)
    assert len(InboxLog.read(path).entries) == 50
