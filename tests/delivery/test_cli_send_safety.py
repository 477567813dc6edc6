"""`smakom send`'s safety nets through the real CLI and a real SMTP server: the uncertain
messages and a certificate authority named relative to the newsletter folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.signin.credentials import store_password
from tests.delivery.test_dry_run import active_addresses
from tests.smtp_server import Certificates, SmtpTestServer, use_server

ISSUE = "issues/2021-01.md"
VANISHED = "eva.lindqvist@example.com"


# Every send here syncs first with a real one-click service, as a real send does.
pytestmark = pytest.mark.usefixtures("synced_newsletter")


def test_resend_uncertain_sends_exactly_the_uncertain_once_more(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """A message lost with the connection after its end is uncertain: the next send names
    it and leaves it out; --resend-uncertain sends exactly that one again, nobody else."""
    live.faults.vanish_after_data.add(VANISHED)
    first = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert first.exit_code == 3, first.output
    assert "--resend-uncertain" in first.output
    everyone = sorted(active_addresses(newsletter))
    assert sorted(r.lower() for r in live.recipients()) == everyone
    live.faults.vanish_after_data.clear()

    plain = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert plain.exit_code == 3, plain.output  # nothing to send, but one still to decide
    assert re.search(rf"not sent again\..*{re.escape(VANISHED)}", plain.output, re.S)
    assert len(live.messages) == len(everyone)

    resent = runner.invoke(app, ["send", ISSUE, "--yes", "--resend-uncertain"])
    assert resent.exit_code == 0, resent.output
    assert f"Sending again to the 1 uncertain: {VANISHED}" in resent.output
    assert [r.lower() for r in live.recipients()[len(everyone) :]] == [VANISHED]

    after = runner.invoke(app, ["send", ISSUE, "--yes", "--resend-uncertain"])
    assert after.exit_code == 0, after.output
    assert "already gone to everyone" in after.output
    assert len(live.messages) == len(everyone) + 1


def test_a_relative_ca_file_is_found_in_the_newsletter_folder(
    runner: CliRunner,
    newsletter: Path,
    smtp_server: SmtpTestServer,
    smtp_certificates: Certificates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ca_file = "certs/ca.pem"` means the newsletter folder's certs/, not the working
    directory's, even when smakom runs elsewhere with --config (e.g. from cron)."""
    (newsletter / "certs").mkdir()
    shutil.copy(smtp_certificates.ca_file, newsletter / "certs" / "ca.pem")
    use_server(newsletter, smtp_server, ca_file="certs/ca.pem")
    store_password(smtp_server.username, smtp_server.password)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "certs").mkdir(parents=True)
    shutil.copy(smtp_certificates.other_ca_file, elsewhere / "certs" / "ca.pem")
    monkeypatch.chdir(elsewhere)

    config, issue = str(newsletter / "smakom.toml"), str(newsletter / ISSUE)
    result = runner.invoke(app, ["--config", config, "send", issue, "--yes"])

    assert result.exit_code == 0, result.output
    assert sorted(r.lower() for r in smtp_server.recipients()) == sorted(
        active_addresses(newsletter)
    )
