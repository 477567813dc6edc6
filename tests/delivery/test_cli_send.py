"""`smakom send` through the real CLI against a real SMTP server (STARTTLS and AUTH)."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.signin.credentials import store_password
from tests.delivery.test_dry_run import active_addresses
from tests.service_server import SECRET, RunningService, gmail_post
from tests.smtp_server import SmtpTestServer, use_server

ISSUE = "issues/2021-01.md"


# Every send here syncs first with a real one-click service, as a real send does.
pytestmark = pytest.mark.usefixtures("synced_newsletter")


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def test_send_delivers_one_personal_message_to_each_active_subscriber(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """Each active subscriber gets exactly one message; the report and journal say so."""
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 0, result.output
    expected = active_addresses(newsletter)
    assert sorted(r.lower() for r in live.recipients()) == sorted(expected)
    assert all(len(message.rcpt_tos) == 1 for message in live.messages)
    assert re.search(rf"Sent\s+{len(expected)}\b", result.output)
    assert live.password not in result.output
    report = next((newsletter / "sent").glob("2021-01.report.txt"))
    assert f"Sent: {len(expected)}" in report.read_text(encoding="utf-8")


def test_received_messages_parse_with_headers_and_a_working_token(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """What the server got is a complete personal message whose unsubscribe link works."""
    assert runner.invoke(app, ["send", ISSUE, "--yes"]).exit_code == 0
    received = next(m for m in live.messages if m.rcpt_tos == ("eva.lindqvist@example.com",))
    message = parse(received.data)
    for header in ("Date", "Message-ID", "From", "Reply-To", "To", "Subject", "List-Id"):
        assert message[header], header
    assert message["To"] == "Eva Lindqvist <eva.lindqvist@example.com>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text_part is not None and html_part is not None
    assert "Peter Lindroth, ordförande" in text_part.get_content()
    assert "Rapport från styrelsemöte" in html_part.get_content()
    link = re.search(
        r"<(https://www\.smakom\.se/avregistrera\?token=[^>]+)>", message["List-Unsubscribe"]
    )
    assert link

    result = runner.invoke(app, ["unsubscribe", link.group(1)])
    assert result.exit_code == 0, result.output
    assert "eva.lindqvist@example.com is now unsubscribed" in result.output
    forged = link.group(1).replace("token=", "token=x")
    result = runner.invoke(app, ["unsubscribe", forged])
    assert result.exit_code == 1
    assert "not a valid unsubscribe token" in result.output


def test_a_finished_issue_is_not_sent_again(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """Running the same send again sends nothing; a subscriber added since gets it alone."""
    assert runner.invoke(app, ["send", ISSUE, "--yes"]).exit_code == 0
    count = len(live.messages)
    again = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert again.exit_code == 0, again.output
    assert "already gone to everyone" in again.output
    assert len(live.messages) == count

    with (newsletter / "subscribers.csv").open("a", encoding="utf-8") as csv:
        csv.write("ny.medlem@example.org;Ny Medlem;Nykommun\r\n")
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 0, result.output
    assert live.recipients()[count:] == ["ny.medlem@example.org"]


def test_again_sends_a_finished_issue_to_everyone_once_more(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """`--again` is the explicit way to send a finished issue anew; the old journal is kept."""
    assert runner.invoke(app, ["send", ISSUE, "--yes"]).exit_code == 0
    first = sorted(live.recipients())
    result = runner.invoke(app, ["send", ISSUE, "--yes", "--again"])
    assert result.exit_code == 0, result.output
    assert sorted(live.recipients()) == sorted(first * 2)
    assert len(list((newsletter / "sent").glob("2021-01*.jsonl"))) == 2


def test_confirmation_shows_the_count_and_no_sends_nothing(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """Without --yes the user is asked with the recipient count; answering no sends nothing."""
    result = runner.invoke(app, ["send", ISSUE], input="n\n")
    assert result.exit_code == 1
    assert f"to {len(active_addresses(newsletter))} recipients" in result.output
    assert live.messages == []


def test_a_proof_goes_only_to_the_given_address(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """`--to` sends one marked test message and leaves the journal alone."""
    result = runner.invoke(app, ["send", ISSUE, "--to", "redaktor@example.net"])
    assert result.exit_code == 0, result.output
    assert live.recipients() == ["redaktor@example.net"]
    message = parse(live.messages[0].data)
    assert message["Subject"] == "[TEST] SmåKom Nyhetsbrev Januari 2021"
    assert message["To"].addresses[0].addr_spec == "redaktor@example.net"
    assert not (newsletter / "sent").exists()


def proof_link(message: EmailMessage) -> str:
    found = re.search(r"<(https://[^>]+\?token=[^>]+)>", message["List-Unsubscribe"])
    assert found
    return found.group(1)


@pytest.mark.parametrize("as_reader", [None, "anna.aberg@example.com"])
def test_a_proof_changes_nobodys_subscription(
    runner: CliRunner,
    newsletter: Path,
    live: SmtpTestServer,
    one_click_service: RunningService,
    as_reader: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proof is addressed to the proof address alone, and its links unsubscribe nobody: not
    `smakom unsubscribe LINK`, not the service; without --as it shows no real subscriber."""
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", SECRET)
    (newsletter / "templates").mkdir(exist_ok=True)
    (newsletter / "templates" / "newsletter.txt").write_text(
        "Hej {{ subscriber.name }}! {{ unsubscribe_url }}", encoding="utf-8"
    )
    as_option = ["--as", as_reader] if as_reader else []
    result = runner.invoke(app, ["send", ISSUE, "--to", "redaktor@example.net", *as_option])
    assert result.exit_code == 0, result.output
    message = parse(live.messages[0].data)
    assert message["To"] == "redaktor@example.net"
    text_part = message.get_body(("plain",))
    assert text_part is not None
    assert ("Anna" in text_part.get_content()) == bool(as_reader)
    assert "anna.aberg" not in message["List-Unsubscribe"]
    link = proof_link(message)
    before = (newsletter / "unsubscribed.csv").read_bytes()
    events = one_click_service.events()

    refused = runner.invoke(app, ["unsubscribe", link])
    assert refused.exit_code == 1
    assert "This link is from a proof (a test send): it unsubscribes nobody" in refused.output
    page = gmail_post(one_click_service.link(link.partition("token=")[2]))
    assert "Det här är ett provutskick" in page.text
    assert one_click_service.events() == events
    assert (newsletter / "unsubscribed.csv").read_bytes() == before


def test_a_check_error_stops_the_send_unless_forced(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """An image without alt text refuses the send; --force sends anyway."""
    with (newsletter / ISSUE).open("a", encoding="utf-8") as issue:
        issue.write("\n![](https://www.smakom.se/bild.png)\n")
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 1
    assert "has no alt text" in result.output
    assert live.messages == []
    assert runner.invoke(app, ["send", ISSUE, "--yes", "--force"]).exit_code == 0
    assert live.messages


def test_failures_are_reported_and_the_rest_delivered(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """A 550 for one address is in the report; a greylisted one arrives once; exit 3."""
    live.faults.reject.add("anna.aberg@example.com")
    live.faults.greylist.add("bjorn.ostlund@example.org")
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 3, result.output
    assert re.search(r"Failed: anna\.aberg@example\.com: 550", result.output)
    assert re.search(r"Retried\s+1\b", result.output)
    counts = collections.Counter(r.lower() for r in live.recipients())
    expected = set(active_addresses(newsletter)) - {"anna.aberg@example.com"}
    assert set(counts) == expected
    assert set(counts.values()) == {1}


def test_a_wrong_password_is_one_clear_line(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """A refused password stops before anything is sent, and is never printed."""
    store_password(live.username, "fel-lösenord")
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Error: ")
    assert "fel-lösenord" not in result.output
    assert live.messages == []


def test_no_password_stored_says_to_log_in(
    runner: CliRunner, newsletter: Path, smtp_server: SmtpTestServer
) -> None:
    """Without a stored password the send says how to store one."""
    use_server(newsletter, smtp_server)
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 1
    assert "smakom login" in result.output


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="SIGKILL does not exist on Windows")
def test_a_send_killed_half_way_resumes_with_nobody_twice(
    newsletter: Path, smtp_server: SmtpTestServer
) -> None:
    """`kill -9` in the middle of a real send, then the same command again: every address
    arrives exactly once, except any the tool itself reported as uncertain."""
    use_server(newsletter, smtp_server, extra="rate_per_minute = 900\n")
    env = {**os.environ, "SMAKOM_SMTP_PASSWORD": smtp_server.password}
    command = [sys.executable, "-m", "smakom_cli", "send", ISSUE, "--yes"]
    child = subprocess.Popen(
        command, cwd=newsletter, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    expected = active_addresses(newsletter)
    deadline = time.monotonic() + 30
    while len(smtp_server.messages) < len(expected) // 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    halfway = len(smtp_server.messages)
    assert 0 < halfway < len(expected)

    resumed = subprocess.run(
        command, cwd=newsletter, env=env, capture_output=True, text=True, check=False
    )
    reported = re.search(r"--resend-uncertain to send (?:it|them) anyway: (.*)", resumed.stderr)
    uncertain = set(reported.group(1).split(", ")) if reported else set()
    # 3: sent, but someone is uncertain (named in the report); 0: everything done.
    assert resumed.returncode == (3 if uncertain else 0), resumed.stdout + resumed.stderr
    counts = collections.Counter(r.lower() for r in smtp_server.recipients())
    assert all(count == 1 for count in counts.values()), counts
    assert set(counts) | uncertain == set(expected)
    assert len(uncertain) <= 1


def test_a_moved_newsletter_folder_keeps_its_journal(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the whole folder is moved (another laptop, another path), nobody gets it twice."""
    assert runner.invoke(app, ["send", ISSUE, "--yes"]).exit_code == 0
    count = len(live.messages)
    moved = newsletter.rename(newsletter.parent / "flyttad")
    monkeypatch.chdir(moved)
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 0, result.output
    assert "already gone to everyone" in result.output
    assert len(live.messages) == count


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="a console Ctrl-C cannot be sent to a child here")
@pytest.mark.parametrize("stop_signal", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(
    newsletter: Path, smtp_server: SmtpTestServer, stop_signal: str
) -> None:
    """Ctrl-C, `kill` (cron, systemd) and closing the terminal end after the message in
    progress with a summary, a report and exit 4; running again finishes the list, and every
    address has exactly one message."""
    use_server(newsletter, smtp_server, extra="rate_per_minute = 900\n")
    env = {**os.environ, "SMAKOM_SMTP_PASSWORD": smtp_server.password}
    command = [sys.executable, "-m", "smakom_cli", "send", ISSUE, "--yes"]
    child = subprocess.Popen(
        command,
        cwd=newsletter,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    expected = active_addresses(newsletter)
    deadline = time.monotonic() + 30
    while len(smtp_server.messages) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(getattr(signal, stop_signal))
    stopped_output, _ = child.communicate(timeout=30)
    assert child.returncode == 4, stopped_output
    assert "Send interrupted" in stopped_output
    assert "Run the same command again" in stopped_output
    report = (newsletter / "sent" / "2021-01.report.txt").read_text(encoding="utf-8")
    assert "Finished: no, interrupted" in report
    assert len(smtp_server.messages) < len(expected)

    resumed = subprocess.run(
        command, cwd=newsletter, env=env, capture_output=True, text=True, check=False
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "in flight" not in resumed.stderr
    counts = collections.Counter(r.lower() for r in smtp_server.recipients())
    assert sorted(counts) == sorted(expected)
    assert set(counts.values()) == {1}


def test_a_wrong_password_names_where_it_came_from(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused password from SMAKOM_SMTP_PASSWORD says to correct that variable, since
    logging in again cannot help; one from the keyring says to log in again."""
    monkeypatch.setenv("SMAKOM_SMTP_PASSWORD", "fel-lösenord")
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 1
    assert "SMAKOM_SMTP_PASSWORD, which overrides the keyring" in result.output
    assert "fel-lösenord" not in result.output

    monkeypatch.delenv("SMAKOM_SMTP_PASSWORD")
    store_password(live.username, "fel-lösenord")
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 1
    assert "stored in the system keyring" in result.output
    assert "run `smakom login`" in result.output
    assert live.messages == []
