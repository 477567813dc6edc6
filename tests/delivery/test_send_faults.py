"""A send cut short by what goes wrong around it: a full disk, a server that goes away, a
subscriber who leaves while it runs. Each ends with the whole tally and a report."""

from __future__ import annotations

import collections
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.signin.credentials import store_password
from tests.delivery.test_cli_send import ISSUE
from tests.delivery.test_dry_run import active_addresses
from tests.smtp_server import Certificates, SmtpTestServer, running_server, use_server

# Every send here syncs first with a real one-click service, as a real send does.
pytestmark = pytest.mark.usefixtures("synced_newsletter")


def when(condition: Callable[[], bool], then: Callable[[], None]) -> threading.Thread:
    """Run `then` in the background as soon as `condition` holds (within 30 s)."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.002)
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def report_of(newsletter: Path) -> str:
    return (newsletter / "sent" / "2021-01.report.txt").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="a file size limit (RLIMIT_FSIZE) is POSIX")
def test_a_full_disk_stops_the_send_with_a_report_and_exit_4(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """When the journal cannot grow (the disk is full), nothing more is sent, the tally and a
    report say so, exit 4; once there is room, the same command sends the rest, once each."""
    # The shell ignores SIGXFSZ (so a write fails instead of killing) and limits every file
    # the send writes to 8 blocks of 512 bytes: the journal fills up after a few messages.
    limited = ["sh", "-c", "trap '' XFSZ; ulimit -f 8; exec \"$@\"", "sh"]
    command = [*limited, sys.executable, "-m", "smakom_cli", "send", ISSUE, "--yes"]
    full = subprocess.run(command, cwd=newsletter, capture_output=True, text=True, check=False)
    output = full.stdout + full.stderr
    assert full.returncode == 4, output
    assert "Send stopped by a fault" in output
    assert "make room on the disk" in " ".join(output.split())
    assert "Traceback" not in output
    report = report_of(newsletter)
    assert "Finished: no, stopped: the journal" in report
    # A message the server took whose "sent" line found no room is named as handed over
    # whole (or, without room for that line either, as uncertain).
    arrived = len(live.messages)
    assert 0 < arrived < len(active_addresses(newsletter))
    unconfirmed = re.findall(r"^(?:uncertain|handed)\t(.+)$", report, flags=re.M)
    assert f"Sent: {arrived - len(unconfirmed)}" in report
    assert set(unconfirmed) <= {r.lower() for r in live.recipients()}
    uncertain = re.findall(r"^uncertain\t(.+)$", report, flags=re.M)

    resumed = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert resumed.exit_code == (3 if uncertain else 0), resumed.output  # 3: names them
    counts = collections.Counter(r.lower() for r in live.recipients())
    assert sorted(counts) == sorted(active_addresses(newsletter))
    assert set(counts.values()) == {1}, counts


def test_a_server_that_goes_away_part_way_stops_with_a_report_and_exit_4(
    runner: CliRunner,
    newsletter: Path,
    smtp_certificates: Certificates,
) -> None:
    """The server stops listening after ten messages: exit 4, the tally and the report; the
    rest go, once each, when it is back."""
    everyone = active_addresses(newsletter)
    with running_server(smtp_certificates) as first:
        use_server(newsletter, first)
        store_password(first.username, first.password)
        # The server goes away itself, right after answering the tenth message. (A watcher
        # thread that stopped it once ten had arrived could, on a loaded machine, stop it
        # before its "250" for the tenth was written or during the eleventh's DATA: then one
        # message is rightly uncertain and the resumed send ends with 3, not 0.)
        first.faults.gone_after = 10
        stopped = runner.invoke(app, ["send", ISSUE, "--yes"])
        got_first = [r.lower() for r in first.recipients()]
    assert len(got_first) == 10
    assert stopped.exit_code == 4, stopped.output
    assert "Send stopped by a fault" in stopped.output
    assert "Run the same command again" in stopped.output
    report = report_of(newsletter)
    assert "Finished: no, stopped" in report
    assert f"Sent: {len(got_first)}" in report

    with running_server(smtp_certificates) as back:
        use_server(newsletter, back)
        resumed = runner.invoke(app, ["send", ISSUE, "--yes"])
        got = collections.Counter(got_first + [r.lower() for r in back.recipients()])
    assert resumed.exit_code == 0, resumed.output
    assert sorted(got) == sorted(everyone)
    assert set(got.values()) == {1}, got


def test_who_unsubscribes_during_the_send_is_skipped_and_counted(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """`smakom unsubscribe` from another window while the send runs: that subscriber gets
    nothing, and the tally and the report count one skipped."""
    last = active_addresses(newsletter)[-1]
    live.faults.delay_data = 0.02
    leaving = when(
        lambda: len(live.messages) >= 3,
        lambda: subprocess.run(
            [sys.executable, "-m", "smakom_cli", "unsubscribe", last],
            cwd=newsletter,
            check=True,
            capture_output=True,
        ),
    )
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    leaving.join()
    assert result.exit_code == 0, result.output
    assert last not in [r.lower() for r in live.recipients()]
    assert "Skipped (unsubscribed during the send): 1" in report_of(newsletter)
    assert re.search(r"Skipped \(unsubscribed during the send\)\s+1\b", result.output)


def test_a_server_that_wants_a_login_says_so(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer
) -> None:
    """530 "Authentication required" to MAIL FROM (no [smtp] username, so no login): the
    advice is to log in, not about [sender] email."""
    use_server(newsletter, smtp_server)
    config = newsletter / "smakom.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(f'username = "{smtp_server.username}"', 'username = ""'), "utf-8"
    )
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    said = " ".join(result.output.split())
    assert "530 5.7.0 Authentication required" in said, said
    assert "The server wants a login first: set [smtp] username" in said
    assert "Check [sender] email" not in said
    assert smtp_server.messages == []


def test_a_server_that_never_answers_is_named_as_such(
    runner: CliRunner, newsletter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that takes the connection and never greets: the answer names the timeout
    (it said "Check [smtp] port and security")."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # connections wait in the backlog, never answered
        port = listener.getsockname()[1]
        config = newsletter / "smakom.toml"
        text = config.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^host = .*$", 'host = "127.0.0.1"\ntimeout = 0.5', text, count=1)
        text = re.sub(r"(?m)^port = 587.*$", f"port = {port}", text, count=1)
        text = re.sub(r'(?m)^security = "starttls".*$', 'security = "none"', text, count=1)
        text = re.sub(r"(?m)^retry_attempts = .*$", "retry_attempts = 0", text, count=1)
        config.write_text(text, encoding="utf-8")
        monkeypatch.setenv("SMAKOM_SMTP_PASSWORD", "lösen")
        result = runner.invoke(app, ["send", ISSUE, "--yes"])
    said = " ".join(result.output.split())
    assert "did not answer within 0.5 seconds ([smtp] timeout)" in said, said
    assert "port and security" not in said
