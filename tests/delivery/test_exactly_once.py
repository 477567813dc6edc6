""" "Never twice, never lost", through the real CLI and a real SMTP server.

A declined or interrupted confirmation changes no file; a temporary refusal stays temporary;
a renamed copy of the issue or a copy of the list mails nobody twice.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from tests.delivery.test_cli_send import ISSUE
from tests.delivery.test_dry_run import active_addresses
from tests.smtp_server import SmtpTestServer, use_server
from tests.tools import file_digests

# Every send here syncs first with a real one-click service, as a real send does.
pytestmark = pytest.mark.usefixtures("synced_newsletter")


def counts(server: SmtpTestServer) -> collections.Counter[str]:
    return collections.Counter(r.lower() for r in server.recipients())


def lose_reply_for(server: SmtpTestServer, address: str) -> None:
    """The server keeps the message for `address` but the client never hears "250"."""
    server.faults.vanish_after_data.add(address)


def make_one_uncertain(runner: CliRunner, server: SmtpTestServer, address: str) -> None:
    """A first send in which the message to `address` arrives unconfirmed."""
    lose_reply_for(server, address)
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    server.faults.vanish_after_data.clear()
    assert result.exit_code == 3, result.output
    assert address in result.output


def sends_nothing_more(runner: CliRunner, server: SmtpTestServer, issue: str = ISSUE) -> None:
    """A send of `issue` finds it gone to everyone already and mails nobody."""
    before = len(server.messages)
    result = runner.invoke(app, ["send", issue, "--yes"])
    assert result.exit_code == 0, result.output
    assert "already gone to everyone" in result.output
    assert len(server.messages) == before


MODES = {
    "plain": [],
    "again": ["--again"],
    "resend-uncertain": ["--resend-uncertain"],
}


def before_the_prompt(runner: CliRunner, server: SmtpTestServer, mode: str) -> None:
    """What the office has done before it declines `mode`: nothing, a send, an uncertain send."""
    if mode == "again":
        assert runner.invoke(app, ["send", ISSUE, "--yes"]).exit_code == 0
    elif mode == "resend-uncertain":
        make_one_uncertain(runner, server, "eva.lindqvist@example.com")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("answer", ["n\n", ""], ids=["no", "end-of-input"])
def test_declining_changes_no_file_and_the_next_send_sends_nobody_twice(
    runner: CliRunner,
    tmp_path: Path,
    newsletter: Path,
    live: SmtpTestServer,
    mode: str,
    answer: str,
) -> None:
    """Answering "n" (or closing the input) at the confirmation leaves every file, the
    keyring included, byte for byte as it was; the next plain send mails nobody twice."""
    before_the_prompt(runner, live, mode)
    before = file_digests(tmp_path)
    sent = len(live.messages)

    declined = runner.invoke(app, ["send", ISSUE, *MODES[mode]], input=answer)
    assert declined.exit_code == 1, declined.output
    assert "Aborted" in declined.output
    assert file_digests(tmp_path) == before
    assert len(live.messages) == sent

    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code in (0, 3), result.output
    got = counts(live)
    assert set(got.values()) == {1}, got
    assert set(got) == set(active_addresses(newsletter))


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="a console Ctrl-C cannot be sent to a child here")
@pytest.mark.parametrize("mode", MODES)
def test_ctrl_c_at_the_prompt_changes_no_file(
    runner: CliRunner, tmp_path: Path, newsletter: Path, live: SmtpTestServer, mode: str
) -> None:
    """Ctrl-C while `smakom send` asks for confirmation writes nothing: no journal, no report,
    no key in the keyring, unsubscribed.csv as it was; the next send mails nobody twice."""
    before_the_prompt(runner, live, mode)
    before = file_digests(tmp_path)
    sent = len(live.messages)

    child = subprocess.Popen(
        [sys.executable, "-m", "smakom_cli", "send", ISSUE, *MODES[mode]],
        cwd=newsletter,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert child.stdout is not None
    seen = b""
    while b"[y/N]" not in seen:
        byte = child.stdout.read(1)
        assert byte, seen.decode("utf-8", "replace")
        seen += byte
    child.send_signal(signal.SIGINT)
    rest, _ = child.communicate(timeout=30)
    assert child.returncode == 1, (seen + rest).decode("utf-8", "replace")
    assert file_digests(tmp_path) == before
    assert len(live.messages) == sent

    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code in (0, 3), result.output
    assert set(counts(live).values()) == {1}


def test_the_reported_reproduction_sends_nothing_the_third_time(
    runner: CliRunner, live: SmtpTestServer, newsletter: Path
) -> None:
    """send; "n" to send --again; send: the third command finds the issue already sent."""
    assert runner.invoke(app, ["send", ISSUE, "--yes"]).exit_code == 0
    assert len(live.messages) == len(active_addresses(newsletter))
    declined = runner.invoke(app, ["send", ISSUE, "--again"], input="n\n")
    assert declined.exit_code == 1
    sends_nothing_more(runner, live)


def test_throttling_beyond_the_retries_defers_and_the_next_run_delivers_once(
    runner: CliRunner, live: SmtpTestServer, newsletter: Path
) -> None:
    """A server throttling with 451 for longer than the retries last: exit 4, the report says
    how many wait; once it recovers, the same command delivers to each of them, nobody twice."""
    everyone = active_addresses(newsletter)
    throttled = set(everyone[::2])
    live.faults.throttled.update(throttled)
    first = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert first.exit_code == 4, first.output
    assert "Run the same command again" in first.output
    assert "the server asked to wait, so in 15 minutes or later" in " ".join(first.output.split())
    report = (newsletter / "sent" / "2021-01.report.txt").read_text(encoding="utf-8")
    assert f"Deferred (the server asked to wait; the next run sends them): {len(throttled)}" in (
        report
    )
    assert "Finished: no, the server asked to wait" in report  # was "Finished: yes"
    assert "Send not finished: the server asked to wait" in first.output
    assert set(counts(live)) == set(everyone) - throttled

    still = runner.invoke(app, ["send", ISSUE, "--yes"])  # still throttled
    assert still.exit_code == 4, still.output
    assert "already gone to everyone" not in still.output

    live.faults.throttled.clear()
    recovered = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert recovered.exit_code == 0, recovered.output
    got = counts(live)
    assert set(got) == set(everyone)
    assert set(got.values()) == {1}, got


def test_a_renamed_copy_of_the_issue_sends_to_nobody_who_got_it(
    runner: CliRunner, live: SmtpTestServer, newsletter: Path
) -> None:
    """`2021-01-final.md`, a copy of a sent issue, finds the issue's journal by its text."""
    assert runner.invoke(app, ["send", ISSUE, "--yes"]).exit_code == 0
    copy = newsletter / "issues" / "2021-01-final.md"
    copy.write_bytes((newsletter / ISSUE).read_bytes())
    sends_nothing_more(runner, live, "issues/2021-01-final.md")


def test_a_copy_of_the_list_sends_only_to_who_is_new_on_it(
    runner: CliRunner, live: SmtpTestServer, newsletter: Path
) -> None:
    """A re-export of the list (another file, comma-separated, with a BOM) plus one new
    member: only the new member gets the issue, and the plan says who already has it."""
    assert runner.invoke(app, ["send", ISSUE, "--yes"]).exit_code == 0
    sent = len(live.messages)
    rows = (newsletter / "subscribers.csv").read_text(encoding="utf-8").splitlines()
    export = [row.replace(";", ",") for row in rows] + ["ny.medlem@example.org,Ny Medlem,Nykommun"]
    (newsletter / "export.csv").write_text("\ufeff" + "\r\n".join(export) + "\r\n", "utf-8")

    result = runner.invoke(app, ["send", ISSUE, "--yes", "--subscribers", "export.csv"])
    assert result.exit_code == 0, result.output
    today = time.strftime("%Y-%m-%d")
    assert f"{sent} of these already got this issue from subscribers.csv on {today}" in (
        " ".join(result.output.split())
    )
    assert live.recipients()[sent:] == ["ny.medlem@example.org"]


@pytest.mark.parametrize(
    "options",
    [
        ["--to", "a@example.org", "--dry-run"],
        ["--outbox", "ut"],
        ["--as", "a@example.org"],
        ["--again", "--resend-uncertain"],
        ["--dry-run", "--again"],
        ["--dry-run", "--yes"],
        ["--to", "a@example.org", "--resend-uncertain"],
        ["--to", "a@example.org", "--no-sync"],
    ],
)
def test_options_that_do_not_go_together_are_refused_with_exit_2(
    runner: CliRunner, tmp_path: Path, newsletter: Path, options: list[str]
) -> None:
    """One clear line and exit 2, before anything is read or written."""
    before = file_digests(tmp_path)
    result = runner.invoke(app, ["send", ISSUE, *options])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert file_digests(tmp_path) == before


def test_a_server_that_cannot_be_reached_is_exit_1_and_nothing_counts_as_sent(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer, closed_smtp_port: int
) -> None:
    """Exit 1 when nothing could be sent; once the server is back, everyone gets it once."""
    use_server(newsletter, live)
    toml = newsletter / "smakom.toml"
    good = toml.read_text(encoding="utf-8")
    toml.write_text(good.replace(f"port = {live.port}", f"port = {closed_smtp_port}"), "utf-8")
    down = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert down.exit_code == 1, down.output
    assert "Traceback" not in down.output

    toml.write_text(good, encoding="utf-8")
    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 0, result.output
    assert sorted(counts(live)) == sorted(active_addresses(newsletter))


def test_a_refusal_for_good_is_exit_3_and_never_called_gone_to_everyone(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """A 550 for one address: exit 3, the report names it; a later run does not say the issue
    has gone to everyone, and does not try the address again."""
    live.faults.reject.add("eva.lindqvist@example.com")
    first = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert first.exit_code == 3, first.output
    report = (newsletter / "sent" / "2021-01.report.txt").read_text(encoding="utf-8")
    assert "failed\teva.lindqvist@example.com\t550" in report

    later = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert later.exit_code == 0, later.output
    assert "already gone to everyone" not in later.output
    assert "eva.lindqvist@example.com" in later.output
    assert "eva.lindqvist@example.com" not in counts(live)


def test_a_server_that_stops_taking_mail_part_way_is_exit_4_with_a_report(
    runner: CliRunner, newsletter: Path, live: SmtpTestServer
) -> None:
    """A server that answers 421 to everything after ten messages: the send stops with the
    tally and a report, exit 4; the same command later sends the rest, nobody twice."""
    live.faults.unavailable_after = 10
    stopped = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert stopped.exit_code == 4, stopped.output
    assert "Run the same command again" in stopped.output
    report = (newsletter / "sent" / "2021-01.report.txt").read_text(encoding="utf-8")
    assert "Finished: no, stopped" in report
    assert "Sent: 10" in report
    everyone = active_addresses(newsletter)
    assert f"Still to send (the same command sends them): {len(everyone) - 10}" in report

    live.faults.unavailable_after = None
    resumed = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert resumed.exit_code == 0, resumed.output
    got = counts(live)
    assert set(got) == set(everyone)
    assert set(got.values()) == {1}, got
