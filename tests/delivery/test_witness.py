"""Never fewer already sent: a journal cut short or restored old is an error, not a resend (#19).

The witness (`.smakom/witness.json`) remembers what each journal held when its send ended; a
journal holding less stops every command that would mail, with the same line in `check`, the
preview, the dry run and the send.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smakom_cli.audience.witness import Witness
from smakom_cli.cli import app
from smakom_cli.config import load_config
from smakom_cli.delivery.mailing import prepare
from smakom_cli.delivery.workflow import plan_send
from smakom_cli.errors import SmakomError
from tests.smtp_server import SmtpTestServer
from tests.tools import one_error_line

ISSUE = "issues/2021-01.md"
RECIPIENTS = 30
JOURNAL = Path("sent") / "2021-01.jsonl"


def thirty_on_the_list(newsletter: Path) -> None:
    rows = [f"person{n:02d}@example.org;Person {n};Kommun {n}" for n in range(RECIPIENTS)]
    (newsletter / "subscribers.csv").write_text(
        "email;name;organisation\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )


def sent_to_thirty(runner: CliRunner, newsletter: Path, live: SmtpTestServer) -> bytes:
    """The issue sent to a list of 30; the journal's bytes afterwards."""
    thirty_on_the_list(newsletter)
    result = runner.invoke(app, ["send", ISSUE, "--yes", "--no-sync"])
    assert result.exit_code == 0, result.output
    assert len(live.messages) == RECIPIENTS
    return (newsletter / JOURNAL).read_bytes()


def cuts(data: bytes) -> list[int]:
    """Every line boundary of `data` and a point inside every line."""
    points: set[int] = set()
    start = 0
    for line in data.split(b"\n")[:-1]:
        points |= {start, start + len(line) // 2, start + len(line), start + len(line) + 1}
        start += len(line) + 1
    return sorted(p for p in points if p < len(data))


def test_a_cut_journal_never_sends_anyone_the_issue_again(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """The 30-recipient journal cut at every line boundary and inside every line: each plan
    is refused, or (only the end of the last run lost) plans nobody."""
    whole = sent_to_thirty(runner, newsletter, live)
    config = load_config(newsletter / "smakom.toml")
    mailing = prepare(config, newsletter / ISSUE, secret=None)
    refused = planned = 0
    for cut in cuts(whole):
        (newsletter / JOURNAL).write_bytes(whole[:cut])
        try:
            plan = plan_send(mailing, findings=[])
        except SmakomError as exc:
            assert "2021-01.jsonl" in str(exc), cut
            refused += 1
        else:
            assert plan.pending == 0, (cut, whole[:cut][-200:])
            planned += 1
    assert refused > 2 * RECIPIENTS
    assert planned  # cutting only the "complete" line loses nobody


def test_a_journal_restored_from_an_older_backup_stops_every_command(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """Cut after its 7th record: the send, `check`, the preview and the dry run all exit 1
    with the same line, saying how many are missing; nobody is mailed."""
    whole = sent_to_thirty(runner, newsletter, live)
    lines = whole.split(b"\n")
    (newsletter / JOURNAL).write_bytes(b"\n".join(lines[:7]) + b"\n")

    errors = set()
    for command in (
        ["send", ISSUE, "--yes", "--no-sync"],
        ["send", ISSUE, "--dry-run"],
        ["check", ISSUE, "--offline"],
        ["preview", ISSUE],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
        errors.add(one_error_line(result.output))
    [error] = errors
    assert "2021-01.jsonl" in error
    assert "named 30 when its last send ended" in " ".join(error.split())
    assert "Restore the whole journal from a backup" in error
    assert len(live.messages) == RECIPIENTS
    assert not (newsletter / "outbox" / "2021-01").exists()


def test_a_journal_cut_to_one_recipient_says_so_in_the_singular(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """Cut short, ever shorter: each count is worded for itself ("1 recipients" before)."""
    lines = sent_to_thirty(runner, newsletter, live).split(b"\n")
    said = []
    for cut in range(3, 12):
        (newsletter / JOURNAL).write_bytes(b"\n".join(lines[:cut]) + b"\n")
        result = runner.invoke(app, ["check", ISSUE, "--offline"])
        assert result.exit_code == 1, result.output
        said.append(" ".join(result.output.split()))
    assert any("it names 1 recipient who got this issue" in line for line in said), said
    assert not any(re.search(r"\b1 recipients\b", line) for line in said), said


def test_a_deleted_or_emptied_journal_is_named_not_taken_as_nothing_sent(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """An empty journal, or none at all, with the witness knowing 30: exit 1, nobody mailed."""
    sent_to_thirty(runner, newsletter, live)
    (newsletter / JOURNAL).write_bytes(b"")
    empty = runner.invoke(app, ["send", ISSUE, "--yes", "--no-sync"])
    assert empty.exit_code == 1, empty.output
    assert "is empty" in empty.output

    (newsletter / JOURNAL).unlink()
    gone = runner.invoke(app, ["send", ISSUE, "--yes", "--no-sync"])
    assert gone.exit_code == 1, gone.output
    assert "is missing, but it recorded 30 recipients" in " ".join(gone.output.split())
    assert len(live.messages) == RECIPIENTS


def test_a_missing_witness_is_made_again_with_a_warning(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """A fresh copy of the folder without .smakom/: the dry run warns and writes no witness;
    the next send makes it from the files, and sends nobody twice."""
    whole = sent_to_thirty(runner, newsletter, live)
    shutil.rmtree(newsletter / ".smakom")

    dry = runner.invoke(app, ["send", ISSUE, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "witness" in dry.output and "missing" in dry.output
    assert not (newsletter / ".smakom" / "witness.json").exists()

    again = runner.invoke(app, ["send", ISSUE, "--yes", "--no-sync"])
    assert again.exit_code == 0, again.output
    assert len(live.messages) == RECIPIENTS
    record = Witness(newsletter).read()
    assert record.journals is not None and record.journals["2021-01.jsonl"].count == RECIPIENTS
    assert record.unsubscribed is not None and len(record.unsubscribed) == 1

    (newsletter / JOURNAL).write_bytes(whole[: len(whole) // 2])
    cut = runner.invoke(app, ["send", ISSUE, "--yes", "--no-sync"])
    assert cut.exit_code == 1, cut.output


def test_the_witness_lags_a_send_cut_off_and_then_catches_up(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """A send cut off part-way (its witness not yet told) is no gap: the next run finishes
    the list, once each, and the witness then knows all 30."""
    thirty_on_the_list(newsletter)
    live.faults.unavailable_after = 12
    first = runner.invoke(app, ["send", ISSUE, "--yes", "--no-sync"])
    assert first.exit_code == 4, first.output
    live.faults.unavailable_after = None
    live.faults.unavailable = False
    rest = runner.invoke(app, ["send", ISSUE, "--yes", "--no-sync"])
    assert rest.exit_code == 0, rest.output
    assert sorted(live.recipients()) == sorted(set(live.recipients()))
    assert len(live.recipients()) == RECIPIENTS
    record = Witness(newsletter).read()
    assert record.journals is not None and record.journals["2021-01.jsonl"].count == RECIPIENTS


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_witness_file_is_read_or_refused(tmp_path: Path, data: bytes) -> None:
    """Whatever the witness file holds, it reads as a witness or is one clear error."""
    folder = tmp_path / "folder"
    shutil.rmtree(folder, ignore_errors=True)
    witness = Witness(folder)
    with witness.updating() as draft:
        draft.journals = {}
    witness.path.write_bytes(data)
    try:
        record = witness.read()
    except SmakomError as exc:
        assert "witness.json is damaged" in str(exc)
    else:
        assert record.journals is None or all(r.count >= 0 for r in record.journals.values())


@pytest.mark.parametrize("part", ["journals", "unsubscribed"])
def test_a_witness_of_another_shape_is_damage(tmp_path: Path, part: str) -> None:
    """A witness edited into a shape smakom does not write is refused, never read as empty."""
    witness = Witness(tmp_path)
    with witness.updating() as draft:
        draft.journals = {}
    witness.path.write_text(f'{{"version": 1, "{part}": 7}}', encoding="utf-8")
    with pytest.raises(SmakomError, match="damaged"):
        witness.read()


def test_an_emptied_journal_of_a_renamed_copy_is_named_as_empty(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """Sent as issues/2021-01-final.md, its journal emptied: sending issues/2021-01.md says
    the journal is empty (not missing), and mails nobody."""
    thirty_on_the_list(newsletter)
    (newsletter / "issues" / "2021-01-final.md").write_bytes((newsletter / ISSUE).read_bytes())
    first = runner.invoke(app, ["send", "issues/2021-01-final.md", "--yes", "--no-sync"])
    assert first.exit_code == 0, first.output
    (newsletter / "sent" / "2021-01-final.jsonl").write_bytes(b"")
    result = runner.invoke(app, ["send", ISSUE, "--yes", "--no-sync"])
    assert result.exit_code == 1, result.output
    assert "2021-01-final.jsonl is empty" in result.output
    assert len(live.messages) == RECIPIENTS
