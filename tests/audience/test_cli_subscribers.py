"""`smakom unsubscribe`, `smakom resubscribe` and `smakom subscribers`, run as a user runs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.audience.suppression import SuppressionList
from smakom_cli.cli import app
from tests.tools import one_error_line

REPO = Path(__file__).resolve().parents[2]
SUBSCRIBERS = """\
E-post;Namn;Kommun
anna.aberg@example.se;Anna Åberg;Ragunda kommun
bjorn.ostlund@example.se;Björn Östlund;Bjurholms kommun
 ANNA.ABERG@example.se ;Anna Åberg;Ragunda kommun
lars.angstrom@;Lars Ångström;Arjeplogs kommun
cecilia@example.se;;
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small newsletter folder (a Windows-1252 list from Excel) as the working directory."""
    folder = tmp_path / "nyhetsbrev"
    folder.mkdir()
    (folder / "smakom.toml").write_text(
        '[sender]\nname = "SmåKom"\nemail = "nyhetsbrev@example.org"\n', encoding="utf-8"
    )
    (folder / "subscribers.csv").write_bytes(SUBSCRIBERS.replace("\n", "\r\n").encode("cp1252"))
    monkeypatch.chdir(folder)
    return folder


def count(output: str, label: str) -> int:
    """The number on the summary table's row with this label."""
    match = re.search(rf"{re.escape(label)}\s*│\s*(\d+)", output)
    assert match, output
    return int(match.group(1))


def suppressed(folder: Path) -> frozenset[str]:
    return SuppressionList(folder / "unsubscribed.csv").suppressed()


@pytest.mark.parametrize("command", ["unsubscribe", "resubscribe", "subscribers"])
def test_commands_have_help(runner: CliRunner, command: str) -> None:
    """Every command and option explains itself."""
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--subscribers" in result.output
    assert "--help" in result.output


def test_unsubscribe_says_what_happened(runner: CliRunner, folder: Path) -> None:
    """Each address gets a line: unsubscribed now or already, on the list or not."""
    result = runner.invoke(
        app, ["unsubscribe", "Anna.Aberg@Example.se", "okand@example.se", "--reason", "bytt jobb"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "✓ anna.aberg@example.se is now unsubscribed (on the subscriber list)." in lines
    assert (
        "✓ okand@example.se is now unsubscribed (not on the subscriber list; "
        "kept on record so a later import cannot mail it)." in lines
    )
    assert suppressed(folder) == {"anna.aberg@example.se", "okand@example.se"}
    assert "bytt jobb" in (folder / "unsubscribed.csv").read_text(encoding="utf-8-sig")


def test_unsubscribe_twice_is_harmless(runner: CliRunner, folder: Path) -> None:
    """Repeating an unsubscribe, in another case, exits 0 and records nothing new."""
    runner.invoke(app, ["unsubscribe", "bjorn.ostlund@example.se"])
    before = (folder / "unsubscribed.csv").read_bytes()
    result = runner.invoke(app, ["unsubscribe", " BJORN.Ostlund@example.se"])
    assert result.exit_code == 0, result.output
    already = "bjorn.ostlund@example.se was already unsubscribed (on the subscriber list)."
    assert already in result.output.splitlines()
    assert (folder / "unsubscribed.csv").read_bytes() == before


def test_an_address_without_an_at_sign_is_named_as_one(runner: CliRunner, newsletter: Path) -> None:
    """`smakom unsubscribe annaexample.com` says what is wrong with the address (it used to
    answer about the link-signing key in the keyring)."""
    before = (newsletter / "unsubscribed.csv").read_bytes()
    result = runner.invoke(app, ["unsubscribe", "annaexample.com"])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "'annaexample.com' is not an e-mail address (it has no @)" in said
    assert "keyring" not in said
    assert (newsletter / "unsubscribed.csv").read_bytes() == before


def test_unsubscribe_an_invalid_address(runner: CliRunner, folder: Path) -> None:
    """A typo is one clear error line, exit 1, and nobody is unsubscribed."""
    result = runner.invoke(app, ["unsubscribe", "cecilia@example.se", "anna.svensson@"])
    assert result.exit_code == 1, result.output
    assert "Error: 'anna.svensson@' is not an e-mail address" in result.output
    assert not (folder / "unsubscribed.csv").exists()


def test_unsubscribe_needs_an_address(runner: CliRunner, folder: Path) -> None:
    """Without addresses the command says how to give them."""
    result = runner.invoke(app, ["unsubscribe"])
    assert result.exit_code == 1, result.output
    assert "Give the addresses to unsubscribe, or --file" in result.output


def test_unsubscribe_from_a_file(runner: CliRunner, folder: Path) -> None:
    """--file reads one address a line, skipping blank lines and comments."""
    (folder / "studsar.txt").write_text(
        "# Studsade i januari\n\nbjorn.ostlund@example.se\ncecilia@example.se\n", "utf-8"
    )
    result = runner.invoke(app, ["unsubscribe", "--file", "studsar.txt", "--reason", "studsar"])
    assert result.exit_code == 0, result.output
    assert suppressed(folder) == {"bjorn.ostlund@example.se", "cecilia@example.se"}
    assert ",file,studsar" in (folder / "unsubscribed.csv").read_text(encoding="utf-8-sig")


def test_unsubscribe_without_a_subscriber_list(runner: CliRunner, folder: Path) -> None:
    """Unsubscribing works even before there is a subscriber list."""
    (folder / "subscribers.csv").unlink()
    result = runner.invoke(app, ["unsubscribe", "anna.aberg@example.se"])
    assert result.exit_code == 0, result.output
    assert "anna.aberg@example.se is now unsubscribed." in result.output
    assert suppressed(folder) == {"anna.aberg@example.se"}


def test_resubscribe(runner: CliRunner, folder: Path) -> None:
    """Resubscribing lifts an unsubscribe and records that the person opted back in."""
    runner.invoke(app, ["unsubscribe", "anna.aberg@example.se"])
    result = runner.invoke(app, ["resubscribe", "Anna.Aberg@example.se", "--reason", "ringde"])
    assert result.exit_code == 0, result.output
    assert "anna.aberg@example.se is subscribed again (on the subscriber list)." in result.output
    assert suppressed(folder) == frozenset()
    rows = (folder / "unsubscribed.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[-1].startswith("anna.aberg@example.se,resubscribed,")
    assert rows[-1].endswith(",command,ringde")


def test_subscribers_summary(runner: CliRunner, folder: Path) -> None:
    """The summary counts rows and lists each row that is left out, with its line."""
    runner.invoke(app, ["unsubscribe", "bjorn.ostlund@example.se"])
    result = runner.invoke(app, ["subscribers"])
    assert result.exit_code == 0, result.output
    assert count(result.output, "Rows") == 5
    assert count(result.output, "Valid addresses") == 4
    assert count(result.output, "Will receive the newsletter") == 2
    assert count(result.output, "Unsubscribed") == 1
    assert count(result.output, "Duplicates (sent once)") == 1
    assert count(result.output, "Invalid (left out)") == 1
    assert "line 5: 'lars.angstrom@' is not an e-mail address" in result.output
    assert "cecilia@example.se" not in result.output


def test_subscribers_list(runner: CliRunner, folder: Path) -> None:
    """--list shows who will receive the newsletter, without those who unsubscribed."""
    runner.invoke(app, ["unsubscribe", "bjorn.ostlund@example.se"])
    result = runner.invoke(app, ["subscribers", "--list"])
    assert result.exit_code == 0, result.output
    assert re.search(r"anna\.aberg@example\.se\s*│ Anna Åberg\s*│ Ragunda kommun", result.output)
    assert "cecilia@example.se" in result.output
    assert "bjorn.ostlund@example.se" not in result.output


def test_unsubscribes_survive_a_new_export(runner: CliRunner, folder: Path) -> None:
    """Replacing subscribers.csv with a fresh export still leaves out who unsubscribed."""
    runner.invoke(app, ["unsubscribe", "ny@example.se"])
    (folder / "subscribers.csv").write_text("email\nny@example.se\nannan@example.se\n", "utf-8")
    result = runner.invoke(app, ["subscribers", "--list"])
    assert result.exit_code == 0, result.output
    assert count(result.output, "Unsubscribed") == 1
    assert "ny@example.se" not in result.output


def test_subscribers_option_overrides_the_configured_list(runner: CliRunner, folder: Path) -> None:
    """--subscribers PATH checks another list than the one in smakom.toml."""
    (folder / "test.csv").write_text("email\nprov@example.se\n", encoding="utf-8")
    result = runner.invoke(app, ["subscribers", "--subscribers", "test.csv", "--list"])
    assert result.exit_code == 0, result.output
    assert count(result.output, "Rows") == 1
    assert "prov@example.se" in result.output


def test_subscribers_without_an_email_column(runner: CliRunner, folder: Path) -> None:
    """A list without an address column fails with the columns it has."""
    (folder / "subscribers.csv").write_text("Namn;Telefon\nAnna;070\n", encoding="utf-8")
    result = runner.invoke(app, ["subscribers"])
    assert result.exit_code == 1, result.output
    assert "has no e-mail column: the header on line 1 has 'Namn', 'Telefon'" in result.output


def test_subscribers_missing_file(runner: CliRunner, folder: Path) -> None:
    """A missing list fails with where it was looked for, not a traceback."""
    (folder / "subscribers.csv").unlink()
    result = runner.invoke(app, ["subscribers"])
    assert result.exit_code == 1, result.output
    assert "Error: The subscriber list" in result.output
    assert "does not exist" in result.output


def test_a_damaged_suppression_file_stops_the_summary(runner: CliRunner, folder: Path) -> None:
    """A broken unsubscribed.csv is an error with its line, never taken as 'nobody'."""
    (folder / "unsubscribed.csv").write_text(
        "email,action,when,source,reason\nanna.aberg@example.se,unsubscribed\n", "utf-8"
    )
    result = runner.invoke(app, ["subscribers"])
    assert result.exit_code == 1, result.output
    assert "unsubscribed.csv line 2: 2 fields instead of 5" in result.output


def test_bundled_example(runner: CliRunner, newsletter: Path) -> None:
    """The example folder's list checks out, with its deliberate mistake reported."""
    result = runner.invoke(app, ["subscribers"])
    assert result.exit_code == 0, result.output
    assert "'lars.angstrom@' is not an e-mail address" in result.output


@pytest.mark.slow
def test_twenty_unsubscribes_at_once(folder: Path) -> None:
    """Twenty `smakom unsubscribe` processes started together all end up on the list, once."""
    environment = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout, installed or not
    addresses = [f"person{n}@example.se" for n in range(20)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "smakom_cli", "unsubscribe", address],
            cwd=folder,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for address in addresses
    ]
    for process in processes:
        output = process.communicate(timeout=60)[0]
        assert process.returncode == 0, output
    rows = (folder / "unsubscribed.csv").read_text(encoding="utf-8-sig").splitlines()[1:]
    assert sorted(row.split(",")[0] for row in rows) == sorted(addresses)
    assert suppressed(folder) == set(addresses)


def test_a_runaway_quote_stops_every_command_with_the_same_line(
    runner: CliRunner, newsletter: Path
) -> None:
    """The reported openq.csv: `subscribers`, `check`, `preview` and the dry run each exit 1
    with one line naming line 2, where the quote opened; no message is written."""
    (newsletter / "openq.csv").write_text(
        'email;name;organisation\nanna@kommun.se;"Anna Å;Ragunda\n'
        "bo@kommun.se;Bo;Åre\ncarl@kommun.se;Carl;Bräcke\n",
        encoding="utf-8",
    )
    errors = set()
    for command in (
        ["subscribers", "--subscribers", "openq.csv", "--list"],
        ["check", "issues/2021-01.md", "--offline", "--subscribers", "openq.csv"],
        ["preview", "issues/2021-01.md", "--subscribers", "openq.csv"],
        ["send", "issues/2021-01.md", "--dry-run", "--subscribers", "openq.csv"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
        line = one_error_line(result.output)
        errors.add(line)
    [error] = errors
    assert "openq.csv line 2: a quote mark opens a value" in error
    assert not (newsletter / "outbox" / "2021-01").exists()
