"""`smakom send --dry-run`: every message as it would go out, written to the outbox."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

from typer.testing import CliRunner

from smakom_cli.audience.subscribers import Subscriber, iter_subscribers
from smakom_cli.cli import app
from tests.conftest import EXAMPLES


def active_addresses(folder: Path) -> list[str]:
    """The example's valid, distinct addresses that are not in its unsubscribed.csv."""
    unsubscribed = (folder / "unsubscribed.csv").read_text(encoding="utf-8-sig")
    seen: dict[str, None] = {}
    for row in iter_subscribers(folder / "subscribers.csv"):
        if isinstance(row, Subscriber) and row.key not in unsubscribed:
            seen.setdefault(row.key)
    return list(seen)


def outbox_recipients(outbox: Path) -> list[str]:
    parser = BytesParser(policy=policy.default)
    recipients = []
    for eml in sorted(outbox.glob("*.eml")):
        message = parser.parsebytes(eml.read_bytes())
        recipients.append(message["To"].addresses[0].addr_spec.lower())
    return recipients


def test_dry_run_writes_one_message_per_active_subscriber(
    runner: CliRunner, newsletter: Path, tmp_path: Path
) -> None:
    """One .eml per active subscriber; none for the unsubscribed, duplicate or invalid rows."""
    outbox = tmp_path / "out"
    result = runner.invoke(app, ["send", "issues/2021-01.md", "--dry-run", "--outbox", str(outbox)])
    assert result.exit_code == 0, result.output
    expected = active_addresses(newsletter)
    assert outbox_recipients(outbox) == expected
    assert "ulla.froberg@example.com" not in expected
    assert re.search(rf"Messages written\s+{len(expected)}\b", result.output)
    assert re.search(r"Skipped as unsubscribed\s+1\b", result.output)
    assert "line 16: 'lars.angstrom@' is not an e-mail address" in result.output


def test_dry_run_messages_are_complete_and_personal(
    runner: CliRunner, newsletter: Path, tmp_path: Path
) -> None:
    """Each file is a whole message for its reader: their name, their unsubscribe link."""
    outbox = tmp_path / "out"
    assert (
        runner.invoke(
            app, ["send", "issues/2021-01.md", "--dry-run", "--outbox", str(outbox)]
        ).exit_code
        == 0
    )
    first = next(iter(sorted(outbox.glob("*.eml"))))
    message = BytesParser(policy=policy.default).parsebytes(first.read_bytes())
    assert message["To"] == "Anna Åberg <anna.aberg@example.com>"
    text = message.get_body(("plain",))
    assert text is not None
    assert "avregistrera?token=" in text.get_content()
    assert "Peter Lindroth, ordförande" in text.get_content()


def test_an_unsubscribe_drops_the_reader_from_preview_and_dry_run(
    runner: CliRunner, newsletter: Path, tmp_path: Path
) -> None:
    """After `smakom unsubscribe x@example.org` (written `X@Example.org ` in the CSV) the
    audience is one smaller and the outbox has no message for that address."""
    assert "X@Example.org ;" in (EXAMPLES / "subscribers.csv").read_text(encoding="utf-8")
    before = runner.invoke(app, ["preview", "issues/2021-01.md"])
    assert before.exit_code == 0, before.output
    match = re.search(r"(\d+) will receive it", before.output)
    assert match
    count = int(match.group(1))

    result = runner.invoke(app, ["unsubscribe", "x@example.org"])
    assert result.exit_code == 0, result.output

    after = runner.invoke(app, ["preview", "issues/2021-01.md"])
    assert f"{count - 1} will receive it" in after.output
    outbox = tmp_path / "out"
    runner.invoke(app, ["send", "issues/2021-01.md", "--dry-run", "--outbox", str(outbox)])
    recipients = outbox_recipients(outbox)
    assert len(recipients) == count - 1
    assert "x@example.org" not in recipients


def test_a_dry_run_needs_no_password_and_no_network(
    runner: CliRunner, newsletter: Path, tmp_path: Path
) -> None:
    """A dry run works with an SMTP host that does not exist and no password anywhere."""
    config = (newsletter / "smakom.toml").read_text(encoding="utf-8")
    (newsletter / "smakom.toml").write_text(
        config.replace('host = "smtp.example.org"', 'host = "no-such-host.invalid"'),
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["send", "issues/2021-01.md", "--dry-run", "--outbox", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert not (newsletter / "sent").exists()


def test_a_second_dry_run_replaces_the_first(runner: CliRunner, newsletter: Path) -> None:
    """The default outbox folder holds only the latest dry run."""
    outbox = newsletter / "outbox" / "2021-01"
    outbox.mkdir(parents=True)
    (outbox / "99999-old@example.com.eml").write_bytes(b"old")
    result = runner.invoke(app, ["send", "issues/2021-01.md", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert not (outbox / "99999-old@example.com.eml").exists()
    assert len(list(outbox.glob("*.eml"))) == len(active_addresses(newsletter))


def test_the_total_size_of_a_small_dry_run_is_in_kilobytes(
    runner: CliRunner, newsletter: Path
) -> None:
    """One message of some 25 KB is shown as such (was "Total size 0.0 MB")."""
    (newsletter / "en.csv").write_text("email\nanna@example.com\n", encoding="utf-8")
    result = runner.invoke(
        app, ["send", "issues/2021-01.md", "--dry-run", "--subscribers", "en.csv"]
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"Total size\s+[1-9]\d*\.\d KB", result.output), result.output
