"""Fixtures of the delivery tests: the watched preview served in this process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from smakom_cli.delivery.watch import IssueWatcher, PreviewServer, watch

ISSUE = "issues/2021-01.md"
# Generous: the machine may be busy; a save is seen within 0.05 s (POLL_SECONDS) when it is not.
WAIT_SECONDS = 30


@pytest.fixture
def served(newsletter: Path) -> Iterator[str]:
    """The example watched and served in this process, as the command does it; its address."""
    watcher = IssueWatcher(newsletter / "smakom.toml", Path(ISSUE), None, None, b"k" * 32)
    watcher.render()
    server = PreviewServer(watcher)
    stopping = threading.Event()
    threads = [
        threading.Thread(target=server.serve_forever, daemon=True),
        threading.Thread(target=watch, args=(watcher, lambda _r: None, stopping), daemon=True),
    ]
    for thread in threads:
        thread.start()
    yield server.url
    stopping.set()
    server.shutdown()
    server.server_close()
    for thread in threads:
        thread.join(timeout=WAIT_SECONDS)
