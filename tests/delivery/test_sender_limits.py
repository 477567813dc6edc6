"""The sender's daily limit and a provider's quota refusal, against the real test server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from smakom_cli.delivery.journal import Journal
from tests.delivery.test_sender import ADDRESSES, FakeClock, open_journal, send
from tests.smtp_server import SmtpTestServer


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with open_journal(tmp_path / "sent" / "2021-01.jsonl") as journal:
        yield journal


def test_the_daily_limit_stops_the_run_and_says_when_to_go_on(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """rate_per_day messages go, the rest wait for the next run, 24 h after the first."""
    clock = FakeClock()
    smtp = smtp_server.config(rate_per_minute=2, rate_per_day=5)
    before = dt.datetime.now(dt.UTC)

    report = send(
        smtp_server,
        [*ADDRESSES, "sjunde@kommun.se"],
        smtp=smtp,
        journal=journal,
        clock=clock,
        sleep=clock.sleep,
    )

    assert report.sent == 5
    assert smtp_server.recipients() == ADDRESSES[:5]
    assert "daily limit of 5 messages ([smtp] rate_per_day)" in report.stopped_by
    assert report.resume_after is not None
    # The first message started 120 fake seconds before the limit was found.
    expected = before + dt.timedelta(days=1) - dt.timedelta(seconds=120)
    assert abs(report.resume_after - expected) < dt.timedelta(seconds=30)
    assert not report.complete
    state = journal.state
    assert len(state.sent) == 5
    assert not state.failed


def test_no_daily_limit_by_default(smtp_server: SmtpTestServer) -> None:
    """Without rate_per_day (and without a provider) nothing is held back."""
    report = send(smtp_server)

    assert report.sent == len(ADDRESSES)
    assert report.resume_after is None


def test_a_quota_refusal_defers_and_stops_for_the_provider_only(
    smtp_server: SmtpTestServer, journal: Journal
) -> None:
    """Microsoft's "sender quota exceeded" stops the run, the message deferred, nobody failed."""
    smtp_server.faults.quota_after = 2
    microsoft = send(smtp_server, smtp=smtp_server.config(provider="microsoft365"), journal=journal)

    assert microsoft.sent == 2
    assert not microsoft.failed
    assert [d.key for d in microsoft.deferred] == [ADDRESSES[2]]
    assert "10,000 recipients a day" in microsoft.stopped_by
    assert microsoft.resume_after is not None
    assert ADDRESSES[2] in journal.state.deferred
