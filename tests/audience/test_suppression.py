"""The suppression list: opt-outs that are never lost, never misread and never mailed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from smakom_cli.audience.suppression import (
    HEADER,
    Change,
    SuppressionList,
    protect,
    read_addresses,
    unprotect,
)
from smakom_cli.errors import SmakomError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "unsubscribed.csv"


def data_rows(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8-sig").splitlines()[1:]


def test_no_file_means_nobody_unsubscribed(path: Path) -> None:
    """Before the first unsubscribe the file does not exist, and nobody is suppressed."""
    assert SuppressionList(path).suppressed() == frozenset()
    assert not path.exists()


def test_unsubscribe_is_case_insensitive_and_idempotent(path: Path) -> None:
    """Unsubscribing the same person again, in any case, changes nothing and says so."""
    suppression = SuppressionList(path)
    first = suppression.unsubscribe(["Anna@Example.se"], source="command", reason="bad")
    again = suppression.unsubscribe([" ANNA@example.SE "], source="command")
    assert first == [Change("anna@example.se", "unsubscribed", already=False)]
    assert again == [Change("anna@example.se", "unsubscribed", already=True)]
    assert suppression.is_suppressed("anna@example.se")
    [row] = data_rows(path)
    assert row.startswith("anna@example.se,unsubscribed,")
    assert row.endswith(",command,bad")


def test_resubscribe_records_an_event(path: Path) -> None:
    """Opting back in adds a `resubscribed` row; the latest event decides."""
    suppression = SuppressionList(path)
    suppression.unsubscribe(["bo@example.se"], source="link")
    changes = suppression.resubscribe(["Bo@example.se"], source="command", reason="phoned")
    assert changes == [Change("bo@example.se", "resubscribed", already=False)]
    assert not suppression.is_suppressed("bo@example.se")
    assert [row.split(",")[1] for row in data_rows(path)] == ["unsubscribed", "resubscribed"]
    suppression.unsubscribe(["bo@example.se"], source="link")
    assert suppression.is_suppressed("bo@example.se")


def test_resubscribing_someone_active_changes_nothing(path: Path) -> None:
    """Resubscribing an address that never unsubscribed writes nothing."""
    changes = SuppressionList(path).resubscribe(["cecilia@example.se"], source="command")
    assert changes == [Change("cecilia@example.se", "resubscribed", already=True)]
    assert not path.exists()


def test_an_invalid_address_writes_nothing(path: Path) -> None:
    """One wrong address among several stops the whole command before anything is written."""
    suppression = SuppressionList(path)
    with pytest.raises(SmakomError, match=r"'anna\.svensson@' is not an e-mail address"):
        suppression.unsubscribe(["ok@example.se", "anna.svensson@"], source="command")
    assert not path.exists()


def test_sees_changes_made_by_another_process(path: Path) -> None:
    """A send's list notices an unsubscribe written meanwhile by another command."""
    sending = SuppressionList(path)
    assert not sending.is_suppressed("dan@example.se")
    SuppressionList(path).unsubscribe(["dan@example.se"], source="link")
    assert sending.is_suppressed("dan@example.se")


def test_safe_to_share_between_threads(path: Path) -> None:
    """Many threads asking while another writes all get answers, and no write is lost."""
    suppression = SuppressionList(path)
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            for _ in range(200):
                suppression.is_suppressed("x@example.se")
        except BaseException as exc:  # the assertion below shows what went wrong
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for n in range(20):
        suppression.unsubscribe([f"user{n}@example.se"], source="link")
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(suppression.suppressed()) == 20


@pytest.mark.parametrize(
    "cell", ["=1+2", "+46 70 123", "-2", "@SUM(A1)", "\tx", "\rx", "'quoted", "''", "plain", ""]
)
def test_formula_guard_round_trip(cell: str) -> None:
    """A cell a spreadsheet would run gets a leading ', and reading removes exactly that."""
    guarded = protect(cell)
    assert unprotect(guarded) == cell
    assert guarded.startswith("'") == (cell[:1] in ("=", "+", "-", "@", "\t", "\r", "'"))


def test_file_cells_are_guarded_against_formulas(path: Path) -> None:
    """A reason like =HYPERLINK(…) is stored inert and read back exactly as given."""
    suppression = SuppressionList(path)
    suppression.unsubscribe(["-anna@example.se"], source="command", reason='=HYPERLINK("x")')
    [row] = data_rows(path)
    assert row.startswith("'-anna@example.se,")
    assert row.endswith(',command,"\'=HYPERLINK(""x"")"')
    assert SuppressionList(path).suppressed() == {"-anna@example.se"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty but should start with the header row"),
        ("email;action;when;source;reason\n", "line 1: the header should be"),
        (
            "email,action,when,source,reason\na@example.se,unsubscribed,2025-01-01T00:00:00Z\n",
            "line 2: 3 fields instead of 5",
        ),
        (
            "email,action,when,source,reason\n\na@example.se,avregistrerad,2025-01-01,command,\n",
            "line 3: the action must be 'unsubscribed' or 'resubscribed'",
        ),
        (
            "email,action,when,source,reason\nanna@,unsubscribed,2025-01-01T00:00:00Z,link,\n",
            "line 2: 'anna@' is not an e-mail address",
        ),
        (
            "email,action,when,source,reason\na@example.se,unsubscribed,igår,link,\n",
            "line 2: 'igår' is not a time",
        ),
    ],
)
def test_a_damaged_file_is_an_error_never_empty(path: Path, content: str, message: str) -> None:
    """A damaged or badly hand-edited file stops everything, naming the line to fix."""
    path.write_text(content, encoding="utf-8")
    suppression = SuppressionList(path)
    with pytest.raises(SmakomError, match=message):
        suppression.is_suppressed("a@example.se")
    with pytest.raises(SmakomError, match=message):
        suppression.unsubscribe(["b@example.se"], source="command")
    assert path.read_text(encoding="utf-8") == content


def test_a_hand_edited_file_is_kept_as_written(path: Path) -> None:
    """Rows added by hand (LF endings, no final newline) are kept and new rows follow them."""
    path.write_text(
        "email,action,when,source,reason\nedit@example.se,unsubscribed,2025-01-01,hand,",
        encoding="utf-8",
        newline="",
    )
    SuppressionList(path).unsubscribe(["new@example.se"], source="command")
    text = path.read_bytes().decode("utf-8-sig")
    assert text.startswith("email,action,when,source,reason\nedit@example.se,unsubscribed,")
    assert SuppressionList(path).suppressed() == {"edit@example.se", "new@example.se"}


def test_addresses_from_a_file(tmp_path: Path) -> None:
    """An address list skips blank lines and # comments; a bad line is named by number."""
    good = tmp_path / "bounces.txt"
    good.write_text("# Studsar från januari\n\nanna@example.se\n  Bo@Example.se  \n", "utf-8")
    assert read_addresses(good) == ["anna@example.se", "Bo@Example.se"]
    bad = tmp_path / "typos.txt"
    bad.write_text("anna@example.se\nbo@example\n", "utf-8")
    with pytest.raises(SmakomError, match=r"typos\.txt line 2: 'bo@example' is not an e-mail"):
        read_addresses(bad)


def test_left_over_temporary_files_are_removed(path: Path) -> None:
    """A temporary file left by a killed writer is cleaned up by the next write."""
    stale = path.parent / f".{path.name}.abc123.tmp"
    stale.write_text("half a file", encoding="utf-8")
    SuppressionList(path).unsubscribe(["e@example.se"], source="command")
    assert not stale.exists()


# Unsubscribes one new address after another until it is killed; prints each one done.
WRITER = """
import sys
from pathlib import Path
from smakom_cli.audience.suppression import SuppressionList

suppression = SuppressionList(Path(sys.argv[1]))
for n in range(1_000_000):
    suppression.unsubscribe([f"round{sys.argv[2]}-{n}@example.org"], source="test")
    print(n, flush=True)
"""


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="Windows has no SIGKILL")
def test_a_killed_writer_leaves_the_old_or_the_new_file(path: Path) -> None:
    """Killing a writer at a random moment never truncates the file or loses a finished write."""
    seed = {f"seed{n}@example.org" for n in range(20_000)}
    lines = [",".join(HEADER)] + [f"{key},unsubscribed,2025-01-01T00:00:00Z,file," for key in seed]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    environment = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout, installed or not
    delays = random.Random(3)
    for round_number in range(5):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(round_number)],
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline() == "0\n"  # started: it writes in a loop from here on
        threading.Event().wait(delays.uniform(0, 0.3))
        os.kill(writer.pid, signal.SIGKILL)
        finished = 1 + len(writer.communicate()[0].split())
        keys = SuppressionList(path).suppressed()
        assert seed <= keys
        written = {key for key in keys if key.startswith(f"round{round_number}-")}
        # The kill may land after a write and before its print, never before a printed one.
        assert len(written) in (finished, finished + 1)


def test_an_event_keeps_the_time_the_reader_asked(path: Path) -> None:
    """A click on the web recorded later keeps its own time, written in UTC."""
    clicked = datetime(2021, 1, 6, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    SuppressionList(path).unsubscribe(["eva@example.se"], source="one-click", when=clicked)
    assert data_rows(path)[0].split(",")[:4] == [
        "eva@example.se",
        "unsubscribed",
        "2021-01-06T09:30:00Z",
        "one-click",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            'email,action,when,source,reason\na@example.se,unsubscribed,2025-01-01,command,"x\n'
            "b@example.se,unsubscribed,2025-01-01,command,\n",
            "line 2: a quote mark opens a value that is not closed on the same line",
        ),
        (
            'email,action,when,source,reason\na@example.se,unsubscribed,2025-01-01,command,"a\n'
            'b"\n',
            "line 2: a quote mark opens a value that is not closed",
        ),
        (
            'email,action,when,source,reason\na@example.se,unsubscribed,2025-01-01,c,"x"y\n',
            "line 2: the line cannot be read as comma-separated values",
        ),
        (
            "email,action,when,source,reason\na@example.se,unsubscribed,2025-01-01,c,x,\n",
            "line 2: 6 fields instead of 5",
        ),
        (
            "email,action,when,source,reason\r\na@example.se,unsubscribed,2025-01-01,c,\xe5\r\n",
            "line 2: the line is not UTF-8 text",
        ),
    ],
)
def test_damage_that_would_hide_rows_is_an_error(path: Path, content: str, message: str) -> None:
    """A quote left open, a line break inside a value or foreign bytes stop the reading."""
    data = content.encode("latin-1") if "\xe5" in content else content.encode("utf-8")
    path.write_bytes(data)
    with pytest.raises(SmakomError, match=message) as caught:
        SuppressionList(path).suppressed()
    assert "smakom unsubscribed --check" in str(caught.value)
    with pytest.raises(SmakomError, match=message):
        SuppressionList(path).unsubscribe(["c@example.se"], source="command")
    assert path.read_bytes() == data


def test_the_check_reports_every_damaged_line_and_keeps_the_rest(path: Path) -> None:
    """Reading for `--check` lists each bad line and still shows who the sound lines name."""
    path.write_text(
        "email,action,when,source,reason\n"
        'a@example.se,unsubscribed,2025-01-01T00:00:00Z,command,"open\n'
        "b@example.se,unsubscribed,2025-01-02T00:00:00Z,web,\n"
        "c@example.se,avslutad,2025-01-03T00:00:00Z,command,\n"
        ",,,,\n",
        encoding="utf-8",
    )
    reading = SuppressionList(path).read()
    assert [d.line for d in reading.damage] == [2, 4]
    assert all(d.repair for d in reading.damage)
    assert [(e.email, e.since, e.source, e.line) for e in reading.entries] == [
        ("b@example.se", "2025-01-02T00:00:00Z", "web", 3)
    ]


def test_a_reason_with_line_breaks_is_written_on_one_line(path: Path) -> None:
    """A reason pasted with line breaks is stored on one line, so the file stays readable."""
    suppression = SuppressionList(path)
    suppression.unsubscribe(["a@example.se"], source="mail", reason='bad\r\n"many"\nlines\x85x')
    suppression.unsubscribe(["b@example.se"], source="mail\nbox")
    assert len(data_rows(path)) == 2
    [first, second] = SuppressionList(path).read().entries
    assert first.reason == 'bad "many" lines x'
    assert second.source == "mail box"
    assert SuppressionList(path).suppressed() == {"a@example.se", "b@example.se"}


@pytest.mark.skipif(os.name == "nt", reason="Windows has no POSIX permission bits")
def test_a_rewrite_keeps_the_files_permissions(path: Path) -> None:
    """A list readable by the whole office stays so after an unsubscribe (no 0600)."""
    SuppressionList(path).unsubscribe(["a@example.se"], source="command")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    for mode in (0o644, 0o660, 0o600):
        path.chmod(mode)
        SuppressionList(path).unsubscribe([f"m{mode:o}@example.se"], source="command")
        assert path.stat().st_mode & 0o777 == mode


def test_success_is_what_the_file_reads_back(path: Path) -> None:
    """What `unsubscribe` reports as done is on the file when read afresh."""
    changes = SuppressionList(path).unsubscribe(
        ["a@example.se", "B@example.se", "a@example.se"], source="one-click"
    )
    assert [c.already for c in changes] == [False, False, True]
    assert SuppressionList(path).suppressed() == {"a@example.se", "b@example.se"}


def test_time_decides_not_the_order_of_the_lines(path: Path) -> None:
    """Sorted in Excel, an unsubscribe dated March above a resubscribe dated February (in any
    order of the lines): the March unsubscribe is the latest; the address stays suppressed."""
    rows = [
        "anna@k.se,unsubscribed,2021-03-01T09:00:00Z,command,",
        "anna@k.se,resubscribed,2021-02-01T09:00:00Z,command,",
        "bo@k.se,unsubscribed,2021-01-01T09:00:00Z,command,",
        "bo@k.se,resubscribed,2021-01-20T09:00:00+01:00,command,",
    ]
    for order in (rows, rows[::-1], sorted(rows)):
        path.write_text(",".join(HEADER) + "\n" + "\n".join(order) + "\n", encoding="utf-8")
        assert SuppressionList(path).suppressed() == {"anna@k.se"}, order


def test_an_unsubscribe_wins_a_tie(path: Path) -> None:
    """Two events of one address at the same second: whichever line comes first, it is out."""
    rows = [
        "anna@k.se,resubscribed,2021-02-01T09:00:00Z,command,",
        "anna@k.se,unsubscribed,2021-02-01T10:00:00+01:00,command,",
    ]
    for order in (rows, rows[::-1]):
        path.write_text(",".join(HEADER) + "\n" + "\n".join(order) + "\n", encoding="utf-8")
        assert SuppressionList(path).suppressed() == {"anna@k.se"}


def test_an_older_event_from_afar_changes_nothing(path: Path) -> None:
    """A bounce dated before the resubscribe the office recorded since is not applied."""
    suppression = SuppressionList(path)
    suppression.unsubscribe(["anna@k.se"], source="command")
    suppression.resubscribe(["anna@k.se"], source="command")
    old = datetime.now(UTC) - timedelta(days=2)
    [change] = suppression.unsubscribe(["anna@k.se"], source="bounce", when=old)
    assert change.already
    assert not suppression.is_suppressed("anna@k.se")


def test_a_command_takes_effect_over_a_line_from_the_future(path: Path) -> None:
    """A resubscribe typed with a wrong year (2031) cannot make `unsubscribe` today fail."""
    path.write_text(
        ",".join(HEADER) + "\nanna@k.se,resubscribed,2031-01-01T00:00:00Z,command,\n",
        encoding="utf-8",
    )
    [change] = SuppressionList(path).unsubscribe(["anna@k.se"], source="command")
    assert not change.already
    assert SuppressionList(path).suppressed() == {"anna@k.se"}


def test_the_check_notes_lines_out_of_time_order(path: Path) -> None:
    """A re-sorted file is sound: `--check` reads it as such and notes each earlier line."""
    path.write_text(
        ",".join(HEADER) + "\n"
        "anna@k.se,unsubscribed,2021-03-01T09:00:00Z,command,\n"
        "anna@k.se,resubscribed,2021-02-01T09:00:00Z,command,\n"
        "bo@k.se,unsubscribed,2021-04-01T09:00:00Z,command,\n",
        encoding="utf-8",
    )
    reading = SuppressionList(path).read()
    assert reading.damage == ()
    assert [e.email for e in reading.entries] == ["anna@k.se", "bo@k.se"]
    [note] = reading.notes
    assert note.line == 3
    assert "earlier than line 2" in note.problem
