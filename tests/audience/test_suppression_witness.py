"""Never fewer unsubscribed: a cut or hand-edited unsubscribed.csv that lost someone who left
is an error naming how many, until the file is restored or the person resubscribed (#19)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from smakom_cli.audience.suppression import SuppressionList
from smakom_cli.cli import app
from smakom_cli.errors import SmakomError
from tests.tools import one_error_line

ISSUE = "issues/2021-01.md"
LEFT = ["anna@kommun.se", "bo.berg@kommun.se", "carl@ragunda.se", "dora@are.se", "eva@kommun.se"]


def unsubscribed_by_smakom(path: Path) -> frozenset[str]:
    suppression = SuppressionList(path)
    start = datetime(2021, 1, 5, 9, 0, tzinfo=UTC)
    for number, address in enumerate(LEFT):
        reason = "Bad om att slippa utskicket" if number == 1 else ""
        when = start + timedelta(minutes=number)
        suppression.unsubscribe([address], source="command", reason=reason, when=when)
    return suppression.suppressed()


def test_the_list_cut_at_any_byte_never_reads_as_fewer_unsubscribed(tmp_path: Path) -> None:
    """unsubscribed.csv cut at every byte offset (a copy that stopped, a sync conflict):
    each read is an error or still suppresses everyone who left."""
    path = tmp_path / "unsubscribed.csv"
    everyone = unsubscribed_by_smakom(path)
    whole = path.read_bytes()
    refused = 0
    for cut in range(len(whole)):
        path.write_bytes(whole[:cut])
        try:
            suppressed = SuppressionList(path).suppressed()
        except SmakomError:
            refused += 1
        else:
            assert suppressed >= everyone, (cut, whole[:cut])
    assert refused >= len(whole) - 2  # all but the cuts of the final line end alone
    path.write_bytes(whole)
    assert SuppressionList(path).suppressed() == everyone


def test_a_list_cut_inside_a_value_stops_check_and_the_dry_run(
    runner: CliRunner, newsletter: Path
) -> None:
    """Cut inside the reason of its second record (no final line end): `check`, the dry run
    and `--check` exit 1 with one line saying one person is no longer suppressed."""
    assert runner.invoke(app, ["unsubscribe", "anna.aberg@example.com"]).exit_code == 0
    path = newsletter / "unsubscribed.csv"
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"Bad om att") + 7])

    lines = set()
    for command in (["check", ISSUE, "--offline"], ["send", ISSUE, "--dry-run"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
        line = one_error_line(result.output)
        lines.add(line)
    [line] = lines
    assert "no longer suppresses 1 person who had unsubscribed" in line
    assert not (newsletter / "outbox" / "2021-01").exists()

    checked = runner.invoke(app, ["unsubscribed", "--check"])
    assert checked.exit_code == 1, checked.output
    assert "Restore unsubscribed.csv from a backup" in " ".join(checked.output.split())


def test_a_hand_edit_to_resubscribed_needs_the_command(runner: CliRunner, newsletter: Path) -> None:
    """'unsubscribed' changed to 'resubscribed' by hand is refused; `smakom resubscribe`
    for the person who really came back is the repair, and mails them again."""
    path = newsletter / "unsubscribed.csv"
    assert runner.invoke(app, ["unsubscribe", "anna.aberg@example.com"]).exit_code == 0
    text = path.read_text(encoding="utf-8-sig")
    edited = text.replace(
        "anna.aberg@example.com,unsubscribed", "anna.aberg@example.com,resubscribed"
    )
    path.write_text(edited, encoding="utf-8-sig")

    refused = runner.invoke(app, ["send", ISSUE, "--dry-run"])
    assert refused.exit_code == 1, refused.output
    assert "no longer suppresses 1 person" in refused.output

    repaired = runner.invoke(app, ["resubscribe", "anna.aberg@example.com"])
    assert repaired.exit_code == 0, repaired.output
    dry = runner.invoke(app, ["send", ISSUE, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert any("anna.aberg" in p.name for p in (newsletter / "outbox" / "2021-01").glob("*.eml"))


def test_the_witness_keeps_no_address(tmp_path: Path) -> None:
    """The witness holds keyed hashes, never the addresses themselves."""
    path = tmp_path / "unsubscribed.csv"
    unsubscribed_by_smakom(path)
    witness = (tmp_path / ".smakom" / "witness.json").read_text(encoding="utf-8")
    assert not any(address.split("@")[0] in witness for address in LEFT)
    assert witness.count('"') > 2 * len(LEFT)
