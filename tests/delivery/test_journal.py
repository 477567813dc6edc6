"""The send journal: resume semantics, crashes on the same boot and after a restart, damage."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smakom_cli.delivery.journal import (
    Journal,
    JournalHeader,
    JournalState,
    Ticket,
    archive_journal,
    encode,
)
from smakom_cli.delivery.outcome import Outcome
from smakom_cli.errors import SmakomError

HEADER = JournalHeader("2021-01", "SmåKom Nyhetsbrev Januari 2021", "a" * 64)
BOOT = "boot-1"
REBOOTED = "boot-2"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sent" / "2021-01.jsonl"


def open_journal(path: Path, boot: str = BOOT) -> Journal:
    return Journal.open(path, HEADER, list_name="subscribers.csv", boot=boot)


def sent_in_flight(journal: Journal, key: str) -> None:
    """What the sender writes for a message the server took."""
    journal.mark_ending(journal.mark_in_flight(key))
    journal.record(Outcome.SENT, key)


def test_outcomes_survive_reopening(path: Path) -> None:
    """Sent and failed are done; deferred and skipped are to be sent; an ended DATA with no
    answer is uncertain."""
    with open_journal(path) as journal:
        for key in ("sent@k.se", "failed@k.se", "deferred@k.se", "skipped@k.se", "lost@k.se"):
            journal.mark_ending(journal.mark_in_flight(key))
        journal.record(Outcome.SENT, "sent@k.se")
        journal.record(Outcome.FAILED, "failed@k.se", "550 5.1.1 no such user")
        journal.record(Outcome.DEFERRED, "deferred@k.se", "451 4.7.1 greylisted")
        journal.record(Outcome.SKIPPED, "skipped@k.se")

    with open_journal(path) as journal:
        state = journal.state

    assert set(state.sent) == {"sent@k.se"}
    assert state.failed == {"failed@k.se": "550 5.1.1 no such user"}
    assert state.deferred == {"deferred@k.se": "451 4.7.1 greylisted"}
    assert state.done == {"sent@k.se", "failed@k.se"}
    assert state.uncertain == {"lost@k.se"}
    assert state.header == HEADER
    assert [session.list_name for session in state.sessions] == ["subscribers.csv"] * 2
    assert not state.completed


def test_cut_off_before_the_end_of_data_on_the_same_boot_is_sent_again(path: Path) -> None:
    """A process killed before the final "." (the machine still up) cannot have delivered
    the message: it is sent again, not reported uncertain."""
    with open_journal(path) as journal:
        journal.mark_in_flight("anna@k.se")

    state = JournalState.read(path, boot=BOOT)

    assert state.unfinished == {"anna@k.se"}
    assert state.uncertain == frozenset()
    assert "anna@k.se" not in state.not_to_send()


def test_after_a_restart_a_cut_off_message_is_uncertain(path: Path) -> None:
    """After a power cut the lines not forced to disk may be lost, so an in-flight message
    without an answer may have arrived: uncertain, never sent again unasked."""
    with open_journal(path) as journal:
        journal.mark_in_flight("anna@k.se")

    state = JournalState.read(path, boot=REBOOTED)

    assert state.uncertain == {"anna@k.se"}
    assert state.not_to_send() == {"anna@k.se"}
    assert state.not_to_send(resend_uncertain=True) == frozenset()


def test_a_message_handed_over_whole_before_a_crash_counts_as_sent(path: Path) -> None:
    """Killed after the final "." went to the operating system (the machine still up): the
    server has the whole message, so it is not sent again and not reported uncertain; it is
    named as handed over. After a restart the same lines leave it uncertain, since what the
    system had not yet sent may have been lost with the power."""
    with open_journal(path) as journal:
        ticket = journal.mark_in_flight("anna@k.se")
        journal.mark_ending(ticket)
        journal.mark_handed(ticket)

    state = JournalState.read(path, boot=BOOT)
    assert (set(state.sent), state.handed, state.uncertain) == (
        {"anna@k.se"},
        {"anna@k.se"},
        frozenset(),
    )
    rebooted = JournalState.read(path, boot=REBOOTED)
    assert (set(rebooted.sent), rebooted.uncertain) == (set(), {"anna@k.se"})


def test_a_sent_key_stays_sent(path: Path) -> None:
    """Once sent, a later in-flight line for the same key does not make it uncertain."""
    with open_journal(path) as journal:
        sent_in_flight(journal, "anna@k.se")
        journal.mark_ending(journal.mark_in_flight("anna@k.se"))

    state = JournalState.read(path, boot=REBOOTED)
    assert (set(state.sent), state.uncertain) == ({"anna@k.se"}, frozenset())


def test_the_in_flight_record_is_on_disk_before_the_end_of_data(path: Path) -> None:
    """mark_ending returns only once the in-flight line is durable, and both are in the file."""
    with open_journal(path) as journal:
        ticket = journal.mark_in_flight("anna@k.se")
        journal.mark_ending(ticket)
        lines = path.read_bytes().splitlines()
        assert [line.split(b'"')[3] for line in lines[-2:]] == [b"in-flight", b"ending"]
        assert JournalState.read(path).uncertain == {"anna@k.se"}


def test_torn_last_line_is_ignored_and_cut_off(path: Path) -> None:
    """A line half-written at a crash is ignored, and the next record starts cleanly."""
    with open_journal(path) as journal:
        sent_in_flight(journal, "anna@k.se")
    with path.open("ab") as file:
        file.write(encode({"event": "in-flight", "time": "t", "key": "bo@k.se"})[:25])

    assert JournalState.read(path).done == {"anna@k.se"}
    with open_journal(path) as journal:
        journal.record(Outcome.SKIPPED, "bo@k.se")

    state = JournalState.read(path)
    assert (state.done, state.uncertain, state.unfinished) == ({"anna@k.se"}, set(), set())


def test_whole_last_record_without_its_line_end_is_kept(path: Path) -> None:
    """A last record that lost only its newline still counts, and the next goes on a new line."""
    with open_journal(path) as journal:
        sent_in_flight(journal, "anna@k.se")
    path.write_bytes(path.read_bytes().rstrip(b"\n"))

    with open_journal(path) as journal:
        sent_in_flight(journal, "bo@k.se")

    assert JournalState.read(path).done == {"anna@k.se", "bo@k.se"}


def join_lines(data: bytes, number: int) -> bytes:
    """Line `number` and the next as one line, as a tool that loses a newline leaves them."""
    lines = data.split(b"\n")
    lines[number - 1 : number + 1] = [lines[number - 1] + lines[number]]
    return b"\n".join(lines)


def journal_with_three_sent(path: Path) -> bytes:
    with open_journal(path) as journal:
        for key in ("anna@k.se", "bo@k.se", "cecilia@k.se"):
            sent_in_flight(journal, key)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("damage", "line"),
    [
        (lambda data: data.replace(b"\n", b""), 1),  # every line end lost: one long line
        (lambda data: join_lines(data, 5), 5),  # two records joined in the middle
        (lambda data: data.rstrip(b"\n").replace(b"\n", b"\r\r\n"), 1),  # an editor's mangling
        (lambda data: data.replace(b'"sent"', b'"skipped"', 1), 5),  # an edited outcome
        (lambda data: data.replace(b"anna@", b"anne@", 1), 3),  # an edited address
        (lambda data: data + b"this is not a journal line\n", 12),  # garbage at the end
        (lambda data: data.rstrip(b"\n") + b"x" * 5000, 11),  # a long unfinished tail
        (lambda data: data + data.splitlines(keepends=True)[0], 12),  # a second header
    ],
)
def test_damage_is_an_error_naming_the_line(path: Path, damage: object, line: int) -> None:
    """Joined lines, edited records and garbage are errors, never read as fewer sent."""
    data = journal_with_three_sent(path)
    assert callable(damage)
    path.write_bytes(damage(data))

    with pytest.raises(SmakomError, match=rf"2021-01\.jsonl, line {line}: .*restore it"):
        open_journal(path)
    with pytest.raises(SmakomError, match=rf"line {line}"):
        JournalState.read(path)


def test_a_file_of_garbage_is_not_a_journal(path: Path) -> None:
    """5,000 bytes with no line end are an error, not a torn line to cut off."""
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage" * 625)

    with pytest.raises(SmakomError, match="line 1"):
        open_journal(path)
    assert path.read_bytes() == b"\x00garbage" * 625


def test_an_empty_journal_is_damage_not_nothing_sent(path: Path) -> None:
    """A journal cut to nothing (smakom never writes one without its header) is an error."""
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")

    with pytest.raises(SmakomError, match="is empty"):
        JournalState.read(path)
    with pytest.raises(SmakomError, match="is empty"):
        open_journal(path)


def test_a_second_send_of_the_same_issue_is_refused(path: Path) -> None:
    """While one send holds the journal, another open is refused with a clear sentence."""
    with open_journal(path), pytest.raises(SmakomError, match="Another smakom is sending"):
        open_journal(path)

    with open_journal(path) as journal:  # free again once the first has finished
        sent_in_flight(journal, "anna@k.se")


def test_state_can_be_read_while_a_send_holds_the_lock(path: Path) -> None:
    """A plan reads the journal without waiting for a send in progress."""
    with open_journal(path) as journal:
        sent_in_flight(journal, "anna@k.se")
        assert JournalState.read(path).done == {"anna@k.se"}


def test_no_journal_yet_means_nothing_sent(path: Path) -> None:
    """Reading a journal that does not exist is an empty state, not an error."""
    assert JournalState.read(path) == JournalState()


def test_complete_is_recorded(path: Path) -> None:
    """mark_complete says the whole issue went out, for the summary and the next run."""
    with open_journal(path) as journal:
        sent_in_flight(journal, "anna@k.se")
        journal.mark_complete()

    assert JournalState.read(path).completed


def test_archiving_keeps_the_old_journal_beside_a_new_one(path: Path) -> None:
    """Sending again to everyone starts empty and keeps each earlier journal beside it."""
    for key in ("anna@k.se", "bo@k.se"):
        with open_journal(path) as journal:
            sent_in_flight(journal, key)
        archive_journal(path)

    kept = path.parent.glob("2021-01.until-*.jsonl")
    assert sorted(sorted(JournalState.read(old).done) for old in kept) == [
        ["anna@k.se"],
        ["bo@k.se"],
    ]
    assert not path.exists()


def test_writes_from_many_threads_stay_whole_lines(path: Path) -> None:
    """Workers write and wait for the disk concurrently; every record stays one intact line."""
    with open_journal(path) as journal:

        def write(worker: int) -> None:
            for n in range(50):
                sent_in_flight(journal, f"{worker}-{n}@k.se")

        threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    state = JournalState.read(path)
    assert len(state.sent) == 200
    assert state.uncertain == frozenset()


def test_a_ticket_names_the_key_and_where_its_record_ends(path: Path) -> None:
    """The in-flight ticket points at the end of its own line in the file."""
    with open_journal(path) as journal:
        ticket = journal.mark_in_flight("anna@k.se")
        data = path.read_bytes()
    assert ticket == Ticket("anna@k.se", len(data))
    assert data.endswith(b"\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=10_000), junk=st.binary(max_size=40))
def test_any_damage_is_an_error_or_keeps_every_sent_record(
    tmp_path_factory: pytest.TempPathFactory, cut: int, junk: bytes
) -> None:
    """Whatever bytes replace the end of a journal, reading it either refuses with a
    SmakomError or still counts every record that is intact before the damage."""
    path = tmp_path_factory.mktemp("journal") / "2021-01.jsonl"
    data = journal_with_three_sent(path)
    cut %= len(data) + 1
    path.write_bytes(data[:cut] + junk)
    whole_lines = data[:cut].split(b"\n")[:-1]
    intact = sum(b'"event":"sent"' in line for line in whole_lines)
    try:
        state = JournalState.read(path)
    except SmakomError:
        return
    assert len(state.sent) >= intact
