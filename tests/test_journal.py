"""The send journal: resume semantics, damage, locking."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from smakom_cli.errors import SmakomError
from smakom_cli.journal import Journal, JournalState


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sent" / "2021-01--subscribers.jsonl"


def test_outcomes_survive_reopening(path: Path) -> None:
    """Sent and failed are done; deferred and skipped are to be sent; in-flight is uncertain."""
    with Journal.open(path) as journal:
        for key in ("sent@k.se", "failed@k.se", "deferred@k.se", "skipped@k.se", "lost@k.se"):
            journal.mark_in_flight(key)
        journal.record_sent("sent@k.se")
        journal.record_failed("failed@k.se", "550 5.1.1 no such user")
        journal.record_deferred("deferred@k.se", "451 4.7.1 greylisted")
        journal.record_skipped("skipped@k.se")

    with Journal.open(path) as journal:
        state = journal.state

    assert state.sent == {"sent@k.se"}
    assert state.failed == {"failed@k.se": "550 5.1.1 no such user"}
    assert state.done == {"sent@k.se", "failed@k.se"}
    assert state.uncertain == {"lost@k.se"}
    assert not state.completed


def test_uncertain_is_left_out_unless_asked(path: Path) -> None:
    """A message in flight at a crash is not sent again unless resend_uncertain is given."""
    with Journal.open(path) as journal:
        journal.mark_in_flight("anna@k.se")
        journal.mark_in_flight("bo@k.se")
        journal.record_sent("bo@k.se")

    state = JournalState.read(path)

    assert state.not_to_send() == {"anna@k.se", "bo@k.se"}
    assert state.not_to_send(resend_uncertain=True) == {"bo@k.se"}


def test_a_sent_key_stays_sent(path: Path) -> None:
    """Once sent, a later in-flight line for the same key does not make it uncertain."""
    with Journal.open(path) as journal:
        journal.mark_in_flight("anna@k.se")
        journal.record_sent("anna@k.se")
        journal.mark_in_flight("anna@k.se")

    assert JournalState.read(path) == JournalState(sent=frozenset({"anna@k.se"}))


def test_every_record_is_on_disk_as_it_is_written(path: Path) -> None:
    """Each line is flushed at once, so a crash right after loses nothing written."""
    with Journal.open(path) as journal:
        journal.mark_in_flight("anna@k.se")
        assert json.loads(path.read_text(encoding="utf-8"))["event"] == "in-flight"
        assert JournalState.read(path).uncertain == {"anna@k.se"}


def test_torn_last_line_is_ignored_and_cut_off(path: Path) -> None:
    """A line half-written at a crash is ignored, and the next record starts cleanly."""
    with Journal.open(path) as journal:
        journal.mark_in_flight("anna@k.se")
        journal.record_sent("anna@k.se")
    with path.open("ab") as file:
        file.write(b'{"time": "2021-01-14T09:30:00+01:00", "event": "in-fl')

    assert JournalState.read(path).done == {"anna@k.se"}
    with Journal.open(path) as journal:
        journal.mark_in_flight("bo@k.se")

    assert JournalState.read(path) == JournalState(
        sent=frozenset({"anna@k.se"}), uncertain=frozenset({"bo@k.se"})
    )
    assert len(path.read_bytes().splitlines()) == 3


def test_whole_last_record_without_its_line_end_is_kept(path: Path) -> None:
    """A last record that lost only its newline still counts, and the next goes on a new line."""
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"event": "sent", "key": "anna@k.se"}')

    with Journal.open(path) as journal:
        journal.record_sent("bo@k.se")

    assert JournalState.read(path).done == {"anna@k.se", "bo@k.se"}


def test_damaged_line_in_the_middle_names_file_and_line(path: Path) -> None:
    """Damage before the last line is an error: guessing could send someone the issue twice."""
    path.parent.mkdir(parents=True)
    path.write_text(
        '{"event": "sent", "key": "anna@k.se"}\n'
        "this is not json\n"
        '{"event": "sent", "key": "bo@k.se"}\n',
        encoding="utf-8",
    )

    with pytest.raises(SmakomError, match=r"2021-01--subscribers\.jsonl, line 2: damaged"):
        Journal.open(path)
    with pytest.raises(SmakomError, match="line 2"):
        JournalState.read(path)


def test_a_second_send_of_the_same_issue_is_refused(path: Path) -> None:
    """While one send holds the journal, another open is refused with a clear sentence."""
    with Journal.open(path), pytest.raises(SmakomError, match="Another smakom is sending"):
        Journal.open(path)

    with Journal.open(path) as journal:  # free again once the first has finished
        journal.record_sent("anna@k.se")


def test_state_can_be_read_while_a_send_holds_the_lock(path: Path) -> None:
    """A preview reads the journal without waiting for a send in progress."""
    with Journal.open(path) as journal:
        journal.record_sent("anna@k.se")
        assert JournalState.read(path).done == {"anna@k.se"}


def test_no_journal_yet_means_nothing_sent(path: Path) -> None:
    """Reading a journal that does not exist is an empty state, not an error."""
    assert JournalState.read(path) == JournalState()


def test_complete_is_recorded(path: Path) -> None:
    """mark_complete says the whole issue went out, for the summary and the next run."""
    with Journal.open(path) as journal:
        journal.record_sent("anna@k.se")
        journal.mark_complete()

    assert JournalState.read(path).completed


def test_fresh_journal_keeps_the_old_one(path: Path) -> None:
    """Sending again to everyone starts empty and keeps the earlier journal beside it."""
    with Journal.open(path) as journal:
        journal.record_sent("anna@k.se")

    with Journal.open(path, fresh=True) as journal:
        assert journal.done == frozenset()
        journal.record_sent("bo@k.se")
    with Journal.open(path, fresh=True):
        pass

    kept = path.parent.glob("2021-01--subscribers.until-*.jsonl")
    assert sorted(sorted(JournalState.read(old).done) for old in kept) == [
        ["anna@k.se"],
        ["bo@k.se"],
    ]


def test_writes_from_many_threads_stay_whole_lines(path: Path) -> None:
    """Workers write concurrently; every record stays one intact line."""
    with Journal.open(path) as journal:

        def write(worker: int) -> None:
            for n in range(50):
                journal.mark_in_flight(f"{worker}-{n}@k.se")
                journal.record_sent(f"{worker}-{n}@k.se")

        threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    state = JournalState.read(path)
    assert len(state.sent) == 200
    assert state.uncertain == frozenset()
