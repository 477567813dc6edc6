"""A real send syncs with the one-click service first: nobody who left yesterday is mailed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.audience.unsubscribe_links import make_token
from smakom_cli.cli import app
from smakom_cli.signin.credentials import store_password
from tests.delivery.test_dry_run import active_addresses
from tests.service_server import SECRET, SERVICE_KEY, RunningService, gmail_post, running_service
from tests.smtp_server import SmtpTestServer, closed_port, use_server
from tests.tools import file_digests

ISSUE = "issues/2021-01.md"
LEAVER = "cecilia.arlig@example.com"


def reach_service_at(folder: Path, base: str) -> None:
    """`[unsubscribe] service`: where smakom reaches the service; the links stay https."""
    config = folder / "smakom.toml"
    url = 'url = "https://www.smakom.se/avregistrera"'
    text = re.sub(r'\nservice = ".*"', "", config.read_text(encoding="utf-8"))
    config.write_text(text.replace(url, f'{url}\nservice = "{base}"', 1), encoding="utf-8")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    """A service of this test's own, so its events reach no other test."""
    with running_service(tmp_path / "own-service.sqlite3") as running:
        yield running


@pytest.fixture
def sending(
    newsletter: Path,
    smtp_server: SmtpTestServer,
    service: RunningService,
    monkeypatch: pytest.MonkeyPatch,
) -> SmtpTestServer:
    """The example folder sending to the test SMTP server, syncing with `service`."""
    use_server(newsletter, smtp_server)
    store_password(smtp_server.username, smtp_server.password)
    reach_service_at(newsletter, service.base)
    monkeypatch.setenv("SMAKOM_SERVICE_KEY", SERVICE_KEY)
    # The office's link-signing key is the one the service checks the links with.
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", SECRET)
    return smtp_server


def test_a_send_leaves_out_who_pressed_unsubscribe_since_the_last_sync(
    runner: CliRunner, newsletter: Path, sending: SmtpTestServer, service: RunningService
) -> None:
    """Gmail's one-click POST, then `smakom send` without any `smakom sync`: she is not
    mailed, and unsubscribed.csv records her as `one-click` once the send is confirmed."""
    assert gmail_post(service.link(make_token(SECRET.encode(), LEAVER))).status == 200

    declined = runner.invoke(app, ["send", ISSUE], input="n\n")
    assert declined.exit_code == 1
    assert "1 on subscribers.csv unsubscribed with the link since the last sync" in (
        declined.output
    )
    expected = [a for a in active_addresses(newsletter) if a != LEAVER]
    assert f"to {len(expected)} recipients" in declined.output
    assert LEAVER not in (newsletter / "unsubscribed.csv").read_text(encoding="utf-8")

    result = runner.invoke(app, ["send", ISSUE, "--yes"])
    assert result.exit_code == 0, result.output
    assert sorted(r.lower() for r in sending.recipients()) == sorted(expected)
    rows = (newsletter / "unsubscribed.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[-1].startswith(f"{LEAVER},unsubscribed,") and ",one-click," in rows[-1]


def test_declining_after_a_sync_changes_no_file(
    runner: CliRunner, newsletter: Path, sending: SmtpTestServer, service: RunningService
) -> None:
    """The events are fetched to plan, but written only after the confirmation."""
    assert gmail_post(service.link(make_token(SECRET.encode(), LEAVER))).status == 200
    before = file_digests(newsletter)

    result = runner.invoke(app, ["send", ISSUE], input="n\n")

    assert result.exit_code == 1
    assert file_digests(newsletter) == before
    assert sending.messages == []


def test_an_unreachable_service_stops_the_send_unless_told(
    runner: CliRunner, newsletter: Path, sending: SmtpTestServer
) -> None:
    """Nobody is mailed on stale data: one clear line and exit 1; --no-sync sends anyway."""
    with closed_port() as port:
        reach_service_at(newsletter, f"http://127.0.0.1:{port}")
        stopped = runner.invoke(app, ["send", ISSUE, "--yes"])
        assert stopped.exit_code == 1
        assert "Nobody was mailed; send with --no-sync" in stopped.output
        assert sending.messages == []

        result = runner.invoke(app, ["send", ISSUE, "--yes", "--no-sync"])
    assert result.exit_code == 0, result.output
    assert len(sending.messages) == len(active_addresses(newsletter))


def test_a_dry_run_only_warns_that_it_has_not_synced(
    runner: CliRunner, newsletter: Path, sending: SmtpTestServer
) -> None:
    """A dry run uses no network: it says the web's unsubscribes were never fetched (once an
    issue has gone out: before, nobody can have used a link)."""
    (newsletter / "sent").mkdir()
    (newsletter / "sent" / "2020-12.jsonl").write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["send", ISSUE, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "synced never" in result.output
    assert "--no-sync" not in result.output


def test_no_sync_is_for_a_send_to_the_list(runner: CliRunner, newsletter: Path) -> None:
    """--no-sync with a dry run means nothing: refused with exit 2."""
    result = runner.invoke(app, ["send", ISSUE, "--dry-run", "--no-sync"])
    assert result.exit_code == 2
    assert "--no-sync is for a send to the list" in result.output
