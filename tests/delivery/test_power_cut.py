"""A power cut at any moment of a real send: what was forced to disk never sends anyone twice."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.delivery.journal import JournalState
from smakom_cli.signin.credentials import store_password
from tests.delivery.test_cli_send import ISSUE
from tests.smtp_server import SmtpTestServer, use_server

SUBSCRIBERS = 40
CONNECTIONS = 2
SLOW_DISK_SECONDS = 0.01


class Timeline:
    """What a power cut depends on, in the order it happened: each completed fsync (the
    file's inode and its length when the fsync began, all of which is then on disk) and each
    message the server accepted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[str, Any]] = []

    def add(self, kind: str, value: Any) -> None:
        with self._lock:
            self.events.append((kind, value))


@pytest.fixture
def timeline(monkeypatch: pytest.MonkeyPatch) -> Timeline:
    """Every os.fsync of the run really happens, on a slow disk, and is written down once it
    has returned."""
    events = Timeline()
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        status = os.fstat(descriptor)
        # Slower than a message takes to reach the server: a send that did not wait for the
        # in-flight line would be caught with its messages accepted but not on disk.
        time.sleep(SLOW_DISK_SECONDS)
        real_fsync(descriptor)
        events.add("fsync", (status.st_ino, status.st_size))

    monkeypatch.setattr(os, "fsync", fsync)
    return events


@pytest.mark.usefixtures("synced_newsletter")  # a real send syncs with the service first
def test_a_power_cut_at_any_moment_leaves_every_accepted_message_sent_or_uncertain(
    runner: CliRunner,
    newsletter: Path,
    smtp_server: SmtpTestServer,
    timeline: Timeline,
    tmp_path: Path,
) -> None:
    """Whatever was not yet forced to disk is lost; after the restart no message the server
    took is sent again unasked, and at most one per connection is uncertain."""
    addresses = [f"mottagare{number:02d}@kommun.se" for number in range(SUBSCRIBERS)]
    (newsletter / "subscribers.csv").write_text(
        "email;name\n" + "".join(f"{address};Mottagare\n" for address in addresses),
        encoding="utf-8",
    )
    (newsletter / "unsubscribed.csv").unlink()
    use_server(newsletter, smtp_server, extra=f"connections = {CONNECTIONS}\n")
    store_password(smtp_server.username, smtp_server.password)
    handler = smtp_server.handler
    accept = handler.handle_DATA

    async def handle_data(server: Any, session: Any, envelope: Any) -> str:
        reply = await accept(server, session, envelope)
        timeline.add("accepted", tuple(envelope.rcpt_tos))
        return reply

    # aiosmtpd looks the hook up on the handler object, so the instance's own is used.
    handler.handle_DATA = handle_data  # type: ignore[method-assign]

    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 0, result.output
    journal = next((newsletter / "sent").glob("*.jsonl"))
    written = journal.read_bytes()
    inode = journal.stat().st_ino

    durable, accepted, moments = 0, set[str](), 0
    cut = tmp_path / "after-the-power-cut.jsonl"
    for kind, value in timeline.events:
        if kind == "fsync":
            if value[0] != inode:
                continue
            durable = max(durable, value[1])
        else:
            accepted.update(address.lower() for address in value)
        # The power goes now: only the part of the journal forced to disk survives.
        cut.write_bytes(written[:durable])
        state = JournalState.read(cut, boot="another-boot")
        assert accepted <= set(state.sent) | state.uncertain, (kind, durable)
        assert len(state.uncertain) <= CONNECTIONS
        moments += 1
    assert accepted == set(addresses)
    assert moments > SUBSCRIBERS  # the cut was tried between messages, not just at the end
