"""`send_issue`, the one call that sends an issue to the list, driven in its real order (sync,
check, plan, confirm, write, key, run, report) without the command line, against a real SMTP
server and a real `smakom serve`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.audience.unsubscribe_links import make_token
from smakom_cli.cli import app
from smakom_cli.config import load_config
from smakom_cli.delivery.mailing import Mailing, prepare
from smakom_cli.delivery.send import SendOptions, Starting, _Listening, send_issue
from smakom_cli.delivery.sender import ProgressEvent
from smakom_cli.delivery.workflow import SendPlan
from smakom_cli.errors import ExitCode
from smakom_cli.signin.credentials import store_password
from smakom_cli.signin.resolver import Resolver
from tests.delivery.test_send_sync import reach_service_at
from tests.service_server import SECRET, SERVICE_KEY, RunningService, gmail_post, running_service
from tests.smtp_server import Received, SmtpTestServer, use_server
from tests.tools import file_digests

ISSUE = Path("issues/2021-01.md")
READERS = ["a.ett@example.com", "b.tva@example.com", "c.tre@example.com", "d.fyra@example.com"]
ENVIRON = {"SMAKOM_SERVICE_KEY": SERVICE_KEY, "SMAKOM_UNSUBSCRIBE_SECRET": SECRET}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    with running_service(tmp_path / "own-service.sqlite3") as running:
        yield running


@pytest.fixture
def folder(newsletter: Path, smtp_server: SmtpTestServer, service: RunningService) -> Path:
    """The example folder with a list of four, sending to the test server, syncing with
    `service`."""
    use_server(newsletter, smtp_server)
    store_password(smtp_server.username, smtp_server.password)
    reach_service_at(newsletter, service.base)
    rows = "".join(f"{address};Läsare\n" for address in READERS)
    (newsletter / "subscribers.csv").write_text(f"email;name\n{rows}", encoding="utf-8")
    (newsletter / "unsubscribed.csv").unlink(missing_ok=True)
    return newsletter


def mailing_of(folder: Path) -> Mailing:
    return prepare(load_config(folder / "smakom.toml"), folder / ISSUE, secret=None)


def signin_of(folder: Path, environ: dict[str, str] = ENVIRON) -> Resolver:
    return Resolver(load_config(folder / "smakom.toml"), environ)


def one_click(service: RunningService, address: str) -> None:
    assert gmail_post(service.link(make_token(SECRET.encode(), address))).status == 200


def unsubscribed(folder: Path) -> str:
    path = folder / "unsubscribed.csv"
    return path.read_text(encoding="utf-8-sig") if path.exists() else ""


def test_a_send_goes_sync_plan_confirm_write_run_in_that_order(
    folder: Path, smtp_server: SmtpTestServer, service: RunningService
) -> None:
    """Who pressed unsubscribe is left out of the plan; nothing is written until the
    confirmation; then the event is recorded, the rest are mailed, and the report says done."""
    one_click(service, READERS[1])
    before = file_digests(folder)
    steps: list[str] = []

    def confirm(plan: SendPlan) -> bool:
        steps.append("confirm")
        assert (plan.pending, plan.left_since) == (3, 1)
        # Fetched, not yet written (only the send's hold on the issue is there).
        held = {k: v for k, v in file_digests(folder).items() if not k.startswith(".smakom/")}
        assert held == before
        return True

    def start(starting: Starting) -> Callable[[ProgressEvent], None]:
        steps.append("start")
        assert starting.synced is not None and starting.synced.unsubscribed == (READERS[1],)
        assert READERS[1] in unsubscribed(folder)
        return lambda _event: steps.append("progress") if steps[-1] != "progress" else None

    outcome = send_issue(
        mailing_of(folder), signin_of(folder), SendOptions(), confirm=confirm, on_start=start
    )

    assert steps == ["confirm", "start", "progress"]
    assert outcome.exit_code == ExitCode.DONE
    assert sorted(smtp_server.recipients()) == [READERS[0], READERS[2], READERS[3]]
    again = send_issue(mailing_of(folder), signin_of(folder), SendOptions(), confirm=steps.append)
    assert again.plan.nothing_to_send and again.exit_code == ExitCode.DONE
    assert steps[-1] == "progress"  # nothing to send: not even asked


def test_a_declined_send_touches_no_file(
    folder: Path, smtp_server: SmtpTestServer, service: RunningService
) -> None:
    """Declined after the events were fetched: no file changed, nobody mailed, exit 1."""
    one_click(service, READERS[0])
    before = file_digests(folder)

    outcome = send_issue(
        mailing_of(folder), signin_of(folder), SendOptions(), confirm=lambda _plan: False
    )

    assert outcome.declined and outcome.exit_code == ExitCode.ERROR
    assert file_digests(folder) == before
    assert smtp_server.messages == []


def test_a_one_click_during_the_send_keeps_the_last_reader_from_being_mailed(
    runner: CliRunner,
    folder: Path,
    smtp_server: SmtpTestServer,
    service: RunningService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last reader presses the button while the first message is being delivered: the
    running send asks the service again, skips them and counts them, and unsubscribed.csv
    records them as at the start of a send (#22)."""
    use_server(folder, smtp_server, extra="rate_per_minute = 30\n")
    pressed = threading.Event()

    def press_once(_message: Received) -> None:
        if not pressed.is_set():
            pressed.set()
            one_click(service, READERS[-1])

    smtp_server.handler.on_message = press_once
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)

    result = runner.invoke(app, ["send", str(ISSUE), "--yes"])

    assert result.exit_code == 0, result.output
    assert READERS[-1] not in smtp_server.recipients()
    assert sorted(smtp_server.recipients()) == READERS[:-1]
    assert "Skipped (unsubscribed during the send)  1" in " ".join(result.output.split("\n"))
    row = unsubscribed(folder).splitlines()[-1]
    assert row.startswith(f"{READERS[-1]},unsubscribed,") and ",one-click," in row


def test_a_service_that_goes_away_during_the_send_stops_it_resumably(
    folder: Path, smtp_server: SmtpTestServer, service: RunningService
) -> None:
    """A few failed tries to ask the service, then the send stops with exit 4 and says why;
    the same call later sends the rest (#22)."""
    smtp_server.faults.delay_data = 0.3

    def stop_service(_message: Received) -> None:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()

    smtp_server.handler.on_message = stop_service
    outcome = send_issue(
        mailing_of(folder),
        signin_of(folder),
        SendOptions(),
        confirm=lambda _plan: True,
        refresh_seconds=0.05,
        retry_seconds=0.05,
    )

    assert outcome.exit_code == ExitCode.RESUMABLE
    assert outcome.delivery is not None
    assert "could not be asked who unsubscribed during the send" in outcome.delivery.send.stopped_by
    assert 0 < len(smtp_server.messages) < len(READERS)
    assert outcome.delivery.report_file is not None
    assert "Finished: no, stopped: the one-click service" in (
        outcome.delivery.report_file.read_text(encoding="utf-8")
    )
    rest = send_issue(
        mailing_of(folder),
        signin_of(folder),
        SendOptions(sync=False),
        confirm=lambda _plan: True,
    )
    assert rest.exit_code == ExitCode.DONE
    assert sorted(r.lower() for r in smtp_server.recipients()) == READERS


def test_the_service_is_asked_again_at_least_once_per_interval() -> None:
    """While a send runs the service is asked on a timer, and once more when asked to."""
    calls: list[float] = []
    listening = _Listening(lambda: calls.append(time.monotonic()), every=0.05, retry=0.05)
    listening.start(threading.Event())
    time.sleep(0.3)
    listening.refresh_now()
    listening.close()
    assert len(calls) >= 3
    assert listening.failure == ""


def test_sync_refuses_without_the_real_link_key(
    runner: CliRunner, folder: Path, service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`smakom sync` on a computer without the link key says so and changes nothing, instead
    of matching the new links against a throwaway key and blaming the list (#20)."""
    one_click(service, READERS[0])
    monkeypatch.setenv("SMAKOM_SERVICE_KEY", SERVICE_KEY)
    monkeypatch.delenv("SMAKOM_UNSUBSCRIBE_SECRET", raising=False)
    before = file_digests(folder)

    result = runner.invoke(app, ["sync"])

    assert result.exit_code == 1
    assert "this computer has no key for the unsubscribe links" in " ".join(result.output.split())
    assert "SMAKOM_UNSUBSCRIBE_SECRET" in result.output
    assert file_digests(folder) == before


def test_a_send_refuses_without_the_key_when_a_reader_left_with_a_link(
    folder: Path, smtp_server: SmtpTestServer, service: RunningService
) -> None:
    """Without the key no new link can be matched to its reader, who would be mailed: the
    send stops before anything is written or sent."""
    one_click(service, READERS[0])
    before = file_digests(folder)
    asked: list[SendPlan] = []

    with pytest.raises(Exception, match="cannot be matched to an address") as caught:
        send_issue(
            mailing_of(folder),
            signin_of(folder, {"SMAKOM_SERVICE_KEY": SERVICE_KEY}),
            SendOptions(),
            confirm=lambda plan: asked.append(plan) or True,
        )

    assert "Nobody was mailed" in str(caught.value)
    assert asked == [] and smtp_server.messages == []
    assert file_digests(folder) == before
