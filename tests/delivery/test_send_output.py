"""A send's exit code comes from what was sent, never from a terminal or pipe that went away:
`> /dev/full`, `| head -c 1`, and the terminal closed part-way (SIGHUP, then EIO)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.delivery.test_dry_run import active_addresses
from tests.smtp_server import SmtpTestServer, use_server

ISSUE = "issues/2021-01.md"
pytestmark = pytest.mark.usefixtures("synced_newsletter")


def send_command(newsletter: Path, smtp_server: SmtpTestServer, rate: int = 0) -> list[str]:
    use_server(newsletter, smtp_server, extra=f"rate_per_minute = {rate}\n")
    return [sys.executable, "-m", "smakom_cli", "send", ISSUE, "--yes"]


def environment(smtp_server: SmtpTestServer) -> dict[str, str]:
    return {**os.environ, "SMAKOM_SMTP_PASSWORD": smtp_server.password, "COLUMNS": "100"}


def report(newsletter: Path) -> str:
    return (newsletter / "sent" / "2021-01.report.txt").read_text(encoding="utf-8")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_output_changes_nothing_of_the_send(
    newsletter: Path, smtp_server: SmtpTestServer
) -> None:
    """`smakom send … > /dev/full` delivers every message and exits 0 (was 1), and the
    report file notes that the output went away."""
    command = send_command(newsletter, smtp_server)
    with Path("/dev/full").open("w") as full:
        done = subprocess.run(
            command,
            cwd=newsletter,
            env=environment(smtp_server),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert len(smtp_server.messages) == len(active_addresses(newsletter))
    assert "Finished: yes" in report(newsletter)
    assert "Note: the output went away during the send (No space left on device)" in report(
        newsletter
    )


def test_a_reader_that_leaves_the_pipe_changes_nothing_of_the_send(
    newsletter: Path, smtp_server: SmtpTestServer
) -> None:
    """`smakom send … | head -c 1` delivers every message and exits 0 (was 1, silently)."""
    command = send_command(newsletter, smtp_server)
    child = subprocess.Popen(
        command,
        cwd=newsletter,
        env=environment(smtp_server),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert child.stdout is not None
    child.stdout.read(1)
    child.stdout.close()
    assert child.wait(timeout=60) == 0
    assert len(smtp_server.messages) == len(active_addresses(newsletter))
    assert "Finished: yes" in report(newsletter)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_closing_the_terminal_part_way_is_an_interrupted_send(
    newsletter: Path, smtp_server: SmtpTestServer
) -> None:
    """The terminal closed mid-send (SIGHUP, then every write fails with EIO): the send stops
    after the message in progress with exit 4 and its report (was "Error: Input/output
    error", exit 1)."""
    command = send_command(newsletter, smtp_server, rate=600)
    main, terminal = os.openpty()
    child = subprocess.Popen(
        command,
        cwd=newsletter,
        env=environment(smtp_server),
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    deadline = time.monotonic() + 60
    while len(smtp_server.messages) < 3 and time.monotonic() < deadline:
        readable, _, _ = select.select([main], [], [], 0.1)
        if readable:
            os.read(main, 4096)  # a terminal that is read, as a real one is
    os.close(main)
    child.send_signal(signal.SIGHUP)
    assert child.wait(timeout=60) == 4
    assert "Finished: no, interrupted" in report(newsletter)
    assert 0 < len(smtp_server.messages) < len(active_addresses(newsletter))
