"""Every reader of a file a person can edit, fed with damaged and random bytes (Hypothesis):
it gives a correct result or one `SmakomError`, never another exception; and a suppression
list that reads at all suppresses everyone a plain reading of its lines names."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smakom_cli.audience.subscribers import (
    InvalidRow,
    Subscriber,
    iter_subscribers,
    parse_address,
    read_columns,
    summarise,
)
from smakom_cli.audience.suppression import (
    HEADER,
    RESUBSCRIBED,
    UNSUBSCRIBED,
    SuppressionList,
    flatten,
    protect,
    unprotect,
)
from smakom_cli.compose.issue import load_issue
from smakom_cli.errors import SmakomError

# Small and bounded: these run in every suite and in CI (together well under 20 s).
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# The characters that matter to CSV and to Excel's files, and a few that break encodings.
CSV_PIECES = st.sampled_from(
    [",", ";", "\t", '"', "\r\n", "\n", "\r", " ", "email", "E-post", "Namn", "name", "a@b.se",
     "Å@ö.se", "x@", "@", "'", "=", "å", "\ufeff", "\x00", "\x85", "\u2028", "kommun"]
)  # fmt: skip
CSV_TEXT = st.lists(CSV_PIECES, max_size=40).map("".join)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"])


@contextmanager
def scratch_file(name: str, data: bytes) -> Iterator[Path]:
    """A real file with these bytes (Hypothesis runs many examples per test function)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        yield path


def csv_bytes() -> st.SearchStrategy[bytes]:
    encoded = st.builds(lambda t, e: t.encode(e, errors="replace"), CSV_TEXT, ENCODINGS)
    return st.one_of(st.binary(max_size=300), encoded)


@FUZZ
@given(data=csv_bytes())
@example(data=b'email\n"a@b.se\n')
@example(data=b"\xff\xfee\x00m\x00")
@example(data=b"email;name\r\n\x81@b.se;\x9d\r\n")
def test_the_subscriber_reader_never_crashes(data: bytes) -> None:
    """Any bytes as subscribers.csv: the rows and their counts add up, or one clear error."""
    with scratch_file("subscribers.csv", data) as path:
        try:
            columns = read_columns(path)
            items = list(iter_subscribers(path))
            summary = summarise(path, lambda key: key.startswith("a"))
        except SmakomError as exc:
            assert str(exc)
            return
    assert "email" in columns or columns == ()
    assert summary.rows == len(items) == summary.valid + len(summary.invalid)
    assert summary.valid == summary.active + summary.unsubscribed + summary.duplicates
    for item in items:
        assert isinstance(item, Subscriber | InvalidRow)
        assert item.line >= 2
        if isinstance(item, Subscriber):
            assert parse_address(item.email).key == item.key


FRONT_PIECES = st.sampled_from(
    ["subject", "date", "title", "preheader", "banner", "author", ": ", "\n", "  ", "- ",
     "[", "]", "{", "}", "!!", "!!timestamp ", "!!float ", "!!binary ", "&a ", "*a", "? ",
     "2021-02-30", "2021-13-01", "2021-01-05", "'", '"', "|", ">", "#", "...", "~", "null",
     "true", "1e400", "x", "Hej å", "%YAML 1.1\n", "\t", "<<: ", ",", "\r"]
)  # fmt: skip


def issue_bytes() -> st.SearchStrategy[bytes]:
    front = st.lists(FRONT_PIECES, max_size=30).map("".join)
    structured = st.builds(
        lambda f, body: f"---\n{f}\n---\n{body}".encode(), front, st.text(max_size=30)
    )
    return st.one_of(st.binary(max_size=200), structured)


@FUZZ
@given(data=issue_bytes())
@example(data=b"---\nsubject: Hej\ndate: 2021-02-30\n---\n")
@example(data=b"---\nsubject: !!float abc\n---\n")
@example(data=b"---\n!!float\n---")
@example(data=b"---\n!!timestamp\n---")
@example(data=b"---\nsubject: " + b"[" * 3000 + b"\n---\n")
def test_the_issue_reader_never_crashes(data: bytes) -> None:
    """Any bytes as an issue file: a checked issue, or one clear error."""
    with scratch_file("2021-01.md", data) as path:
        try:
            issue = load_issue(path)
        except SmakomError as exc:
            assert str(exc)
            return
    assert issue.subject
    assert "\n" not in issue.subject
    assert "\r" not in issue.subject
    assert issue.body_line >= 3


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), CSV_TEXT.map(str.encode)))
@example(data=b"email,action,when,source,reason\n" + b"x" * 200_000 + b"\n")
@example(data=b'email,action,when,source,reason\n"' + b"x" * 200_000 + b"\n")
def test_the_suppression_reader_never_crashes(data: bytes) -> None:
    """Any bytes as unsubscribed.csv: the check explains every damage, or the list reads."""
    with scratch_file("unsubscribed.csv", data) as path:
        reading = SuppressionList(path).read()
        try:
            suppressed = SuppressionList(path).suppressed()
        except SmakomError as exc:
            assert reading.damage
            assert "smakom unsubscribed --check" in str(exc)
            return
    assert not reading.damage
    assert {entry.email for entry in reading.entries} == suppressed


ADDRESSES = st.sampled_from(["anna@example.se", "bo@example.se", "-cecilia@example.se", "d@e.se"])
REASONS = st.text(alphabet=st.sampled_from("ab ,;\"'=\r\n\x85"), max_size=12)
EVENTS = st.lists(
    st.tuples(ADDRESSES, st.sampled_from([UNSUBSCRIBED, RESUBSCRIBED]), REASONS), max_size=8
)
DAMAGE = st.lists(
    st.tuples(
        st.sampled_from(['"', "\n", "\r", ",", "\x00", "\xff", "'", ";", "x", "", "delete"]),
        st.integers(min_value=0, max_value=10_000),
    ),
    min_size=1,
    max_size=3,
)


def write_events(events: list[tuple[str, str, str]]) -> bytes:
    """A valid unsubscribed.csv as the tool writes it: each event a second after the last."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for second, (email, action, reason) in enumerate(events):
        row = (
            email,
            action,
            f"2021-01-05T10:{second // 60:02d}:{second % 60:02d}Z",
            "command",
            reason,
        )
        writer.writerow([protect(flatten(cell)) for cell in row])
    return buffer.getvalue().encode("utf-8")


def damaged(data: bytes, damage: list[tuple[str, int]]) -> bytes:
    for what, where in damage:
        at = where % (len(data) + 1)
        if what == "delete":
            data = data[:at] + data[at + 1 :]
        else:
            data = data[:at] + what.encode("latin-1") + data[at:]
    return data


def plainly_unsubscribed(data: bytes) -> set[str]:
    """Who a person reading the file line by line would call unsubscribed: the first two
    comma-separated values of each line, the latest line per address deciding."""
    lines = [line for line in re.split(rb"\r\n|\r|\n", data) if line.strip()][1:]
    latest: dict[str, str] = {}
    for line in lines:
        cells = [cell.strip().strip('"') for cell in line.decode("utf-8", "replace").split(",")]
        if len(cells) >= 2 and cells[1] in (UNSUBSCRIBED, RESUBSCRIBED):
            latest[unprotect(cells[0]).strip().lower()] = cells[1]
    return {email for email, action in latest.items() if action == UNSUBSCRIBED}


@FUZZ
@given(events=EVENTS, damage=DAMAGE)
@example(
    # The issue's case: a quote opened in a reason swallows the rows after it.
    events=[
        ("anna@example.se", UNSUBSCRIBED, "asked by phone"),
        ("bo@example.se", UNSUBSCRIBED, ""),
    ],
    damage=[('"', len(b"email,action,when,source,reason\r\nanna@example.se,unsubscribed,"
                       b"2021-01-05T10:00:00Z,command,"))],
)  # fmt: skip
def test_a_damaged_list_never_suppresses_fewer(
    events: list[tuple[str, str, str]], damage: list[tuple[str, int]]
) -> None:
    """A list that still reads suppresses at least everyone its lines plainly name."""
    data = damaged(write_events(events), damage)
    with scratch_file("unsubscribed.csv", data) as path:
        try:
            suppressed = SuppressionList(path).suppressed()
        except SmakomError:
            return
    assert plainly_unsubscribed(data) <= suppressed


@FUZZ
@given(events=EVENTS)
def test_what_the_tool_writes_reads_back_whole(events: list[tuple[str, str, str]]) -> None:
    """Undamaged, the file means exactly what its events say, whatever the reasons hold."""
    data = write_events(events)
    latest = {email: action for email, action, _reason in events}
    with scratch_file("unsubscribed.csv", data) as path:
        suppressed = SuppressionList(path).suppressed()
    assert suppressed == {email for email, action in latest.items() if action == UNSUBSCRIBED}


@pytest.mark.parametrize(
    "reason", ['asked "by" phone', "rad ett\r\nrad två", "=HYPERLINK(x)", "\x85\u2028", ""]
)
def test_the_writer_keeps_every_record_on_one_line(tmp_path: Path, reason: str) -> None:
    """Whatever a reason holds, each unsubscribe is one line of the file."""
    path = tmp_path / "unsubscribed.csv"
    SuppressionList(path).unsubscribe(["anna@example.se"], source="mail", reason=reason)
    SuppressionList(path).unsubscribe(["bo@example.se"], source="mail", reason=reason)
    lines = re.split(rb"\r\n|\r|\n", path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    assert [line.split(b",")[0] for line in lines if line] == [
        b"email",
        b"anna@example.se",
        b"bo@example.se",
    ]
