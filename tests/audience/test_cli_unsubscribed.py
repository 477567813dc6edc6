"""A damaged unsubscribed.csv stops every command that would mail or change it; `smakom
unsubscribed` lists the list and `--check` explains the damage."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from smakom_cli.audience.suppression import SuppressionList
from smakom_cli.cli import app
from tests.tools import one_error_line

ISSUE = "issues/2021-01.md"
# An office member typed a reason with a quote mark and never closed it (issue 10).
STRAY_QUOTE = (
    b'anna.aberg@example.com,unsubscribed,2020-12-14T09:12:00Z,command,"asked by phone\r\n'
    b"bjorn.ostlund@example.org,unsubscribed,2020-12-15T09:12:00Z,command,\r\n"
)


def damage(newsletter: Path) -> bytes:
    """Append the stray-quote rows to the example's unsubscribed.csv; its bytes afterwards."""
    path = newsletter / "unsubscribed.csv"
    with path.open("ab") as file:
        file.write(STRAY_QUOTE)
    return path.read_bytes()


def test_a_stray_quote_stops_the_dry_run(runner: CliRunner, newsletter: Path) -> None:
    """A quote left open in a reason is one line naming file and line; no outbox is written."""
    damage(newsletter)

    result = runner.invoke(app, ["send", ISSUE, "--dry-run"])

    assert result.exit_code == 1, result.output
    line = one_error_line(result.output)
    assert "unsubscribed.csv line 3: a quote mark opens a value that is not closed" in line
    assert "smakom unsubscribed --check" in line
    assert not (newsletter / "outbox").exists()


def test_a_stray_quote_stops_preview_check_and_the_summary(
    runner: CliRunner, newsletter: Path
) -> None:
    """Every command that shows who would get the issue refuses while the list is damaged."""
    damage(newsletter)

    for command in (["preview", ISSUE], ["check", ISSUE], ["subscribers"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
        assert "unsubscribed.csv line 3" in one_error_line(result.output)


def test_unsubscribe_refuses_to_write_into_an_open_quote(
    runner: CliRunner, newsletter: Path
) -> None:
    """`smakom unsubscribe` on a damaged list changes nothing and claims no success."""
    before = damage(newsletter)

    result = runner.invoke(app, ["unsubscribe", "eva.lindqvist@example.com"])

    assert result.exit_code == 1, result.output
    assert "unsubscribed.csv line 3" in one_error_line(result.output)
    assert "✓" not in result.output
    assert (newsletter / "unsubscribed.csv").read_bytes() == before


def test_check_explains_each_damaged_line_and_how_to_repair_it(
    runner: CliRunner, newsletter: Path
) -> None:
    """`smakom unsubscribed --check` names every damaged line with what to do; exit 1."""
    path = newsletter / "unsubscribed.csv"
    damage(newsletter)
    with path.open("ab") as file:
        file.write(b"carin@example.se;unsubscribed;2021-01-02T10:00:00Z;command;\r\n")

    result = runner.invoke(app, ["unsubscribed", "--check"])

    assert result.exit_code == 1, result.output
    assert "unsubscribed.csv line 3: a quote mark opens a value" in result.output
    assert "unsubscribed.csv line 5: 1 fields instead of 5" in result.output
    assert result.output.count("To repair:") == 2
    assert "2 damaged lines" in result.output


def test_repaired_as_advised_the_list_is_whole_again(runner: CliRunner, newsletter: Path) -> None:
    """Closing the quote as the check advises makes both addresses unsubscribed again."""
    path = newsletter / "unsubscribed.csv"
    path.write_bytes(damage(newsletter).replace(b'"asked by phone', b'"asked by phone"'))

    checked = runner.invoke(app, ["unsubscribed", "--check"])
    listed = runner.invoke(app, ["unsubscribed"])

    assert checked.exit_code == 0, checked.output
    assert "is sound: 3 addresses unsubscribed" in checked.output
    assert listed.exit_code == 0, listed.output
    for address in ("ulla.froberg@example.com", "anna.aberg@example.com", "bjorn.ostlund"):
        assert address in listed.output
    assert "asked by phone" in listed.output
    assert "2020-12-15T09:12:00Z" in listed.output
    assert {"anna.aberg@example.com", "bjorn.ostlund@example.org"} <= SuppressionList(
        path
    ).suppressed()


def test_unsubscribed_lists_only_who_is_unsubscribed_now(
    runner: CliRunner, newsletter: Path
) -> None:
    """Someone who opted back in is not in the table; a new opt-out shows its source."""
    assert (
        runner.invoke(app, ["unsubscribe", "eva@example.se", "--reason", "telefon"]).exit_code == 0
    )
    assert runner.invoke(app, ["resubscribe", "ulla.froberg@example.com"]).exit_code == 0

    result = runner.invoke(app, ["unsubscribed"])

    assert result.exit_code == 0, result.output
    assert "eva@example.se" in result.output
    assert "telefon" in result.output
    assert "command" in result.output
    assert "ulla.froberg" not in result.output


def test_unsubscribed_on_a_damaged_list_is_one_line(runner: CliRunner, newsletter: Path) -> None:
    """Without --check a damaged list is the same one red line as everywhere else."""
    damage(newsletter)

    result = runner.invoke(app, ["unsubscribed"])

    assert result.exit_code == 1
    assert "unsubscribed.csv line 3" in one_error_line(result.output)


def test_nobody_unsubscribed_yet(runner: CliRunner, newsletter: Path) -> None:
    """Before anyone left there is no file; both forms say so and succeed."""
    (newsletter / "unsubscribed.csv").unlink()

    listed = runner.invoke(app, ["unsubscribed"])
    checked = runner.invoke(app, ["unsubscribed", "--check"])

    assert listed.exit_code == 0, listed.output
    assert "Nobody has unsubscribed" in listed.output
    assert checked.exit_code == 0, checked.output
    assert "0 addresses unsubscribed" in checked.output


def test_a_re_sorted_list_mails_nobody_whose_latest_event_is_an_unsubscribe(
    runner: CliRunner, newsletter: Path
) -> None:
    """unsubscribed.csv sorted in Excel (a March unsubscribe above a February resubscribe):
    the dry run leaves the person out, and `--check` calls the file sound with a note."""
    path = newsletter / "unsubscribed.csv"
    with path.open("ab") as file:
        file.write(
            b"anna.aberg@example.com,unsubscribed,2021-03-01T09:00:00Z,command,\r\n"
            b"anna.aberg@example.com,resubscribed,2021-02-01T09:00:00Z,command,\r\n"
        )
    result = runner.invoke(app, ["send", ISSUE, "--dry-run"])
    assert result.exit_code == 0, result.output
    written = " ".join(p.name for p in (newsletter / "outbox" / "2021-01").glob("*.eml"))
    assert "anna.aberg" not in written

    check = runner.invoke(app, ["unsubscribed", "--check"])
    assert check.exit_code == 0, check.output
    text = " ".join(check.output.split())
    assert "Note: unsubscribed.csv line" in text
    assert "the time decides" in text
    assert "is sound" in text
