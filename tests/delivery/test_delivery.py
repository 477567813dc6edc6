"""A whole send to the list through the core (plan, then run), with no command line: what a
library user, or a scheduler of its own, would call."""

from __future__ import annotations

from pathlib import Path

import pytest

from smakom_cli.config import load_config
from smakom_cli.delivery.check import Finding
from smakom_cli.delivery.journal import Journal
from smakom_cli.delivery.mailing import Mailing, prepare
from smakom_cli.delivery.workflow import DeliveryReport, SendPlan, plan_send, run_send
from smakom_cli.errors import SmakomError
from smakom_cli.signin.resolver import Login
from tests.delivery.test_dry_run import active_addresses
from tests.smtp_server import SmtpTestServer, use_server
from tests.tools import file_digests

ISSUE = Path("issues/2021-01.md")
SECRET = b"k" * 32


def mailing_of(folder: Path, issue: Path = ISSUE, subscribers: str | None = None) -> Mailing:
    config = load_config(folder / "smakom.toml")
    list_path = folder / subscribers if subscribers else None
    return prepare(config, folder / issue, subscribers_path=list_path, secret=SECRET)


def plan(folder: Path, **options: bool) -> SendPlan:
    mailing = mailing_of(folder)
    return plan_send(mailing, findings=mailing.check(), **options)


def run(folder: Path, server: SmtpTestServer, the_plan: SendPlan) -> DeliveryReport:
    login = Login(server.username, server.password)
    return run_send(the_plan, mailing_of(folder), login=lambda: login)


@pytest.fixture
def folder(newsletter: Path, smtp_server: SmtpTestServer) -> Path:
    use_server(newsletter, smtp_server)
    return newsletter


def test_a_plan_reads_only_and_a_run_sends_what_it_said(
    folder: Path, smtp_server: SmtpTestServer
) -> None:
    """Planning writes nothing; the run sends to exactly the planned number, once each, and
    the next plan finds nothing to send and says it has gone to everyone."""
    before = file_digests(folder)
    first = plan(folder)
    assert file_digests(folder) == before
    everyone = active_addresses(folder)
    assert (first.pending, first.already, first.refusal) == (len(everyone), 0, "")
    assert first.journal == folder / "sent" / "2021-01.jsonl"

    report = run(folder, smtp_server, first)
    assert report.send.sent == len(everyone) and report.send.complete
    assert report.report_file is not None and report.report_file.exists()
    assert sorted(r.lower() for r in smtp_server.recipients()) == sorted(everyone)

    after = plan(folder)
    assert after.nothing_to_send and after.already == len(everyone)
    assert "already gone to everyone" in after.nothing_to_send_reason


def test_again_is_only_planned_until_it_runs(folder: Path, smtp_server: SmtpTestServer) -> None:
    """A plan with again names the journal it would move aside and moves nothing; running it
    moves it (kept, never deleted) and sends to everyone once more."""
    run(folder, smtp_server, plan(folder))
    before = file_digests(folder)
    again = plan(folder, again=True)
    assert again.to_archive == (folder / "sent" / "2021-01.jsonl",)
    assert again.pending == len(active_addresses(folder))
    assert file_digests(folder) == before

    run(folder, smtp_server, again)
    assert len(list((folder / "sent").glob("2021-01.until-*.jsonl"))) == 1
    assert len(smtp_server.messages) == 2 * len(active_addresses(folder))


def test_refused_and_uncertain_are_planned_apart_from_the_sent(
    folder: Path, smtp_server: SmtpTestServer
) -> None:
    """After a 550 and a lost reply, the plan lists one refused for good and one uncertain,
    sends neither, and does not call the issue gone to everyone; resend_uncertain plans one."""
    smtp_server.faults.reject.add("anna.aberg@example.com")
    smtp_server.faults.vanish_after_data.add("eva.lindqvist@example.com")
    report = run(folder, smtp_server, plan(folder))
    assert [f.key for f in report.send.failed] == ["anna.aberg@example.com"]
    assert report.uncertain == ("eva.lindqvist@example.com",)

    later = plan(folder)
    assert [f.key for f in later.failed_before] == ["anna.aberg@example.com"]
    assert later.uncertain == ("eva.lindqvist@example.com",)
    assert later.nothing_to_send
    assert "already gone to everyone" not in later.nothing_to_send_reason
    assert plan(folder, resend_uncertain=True).pending == 1


def test_a_copy_of_the_list_is_planned_with_where_its_members_got_it(
    folder: Path, smtp_server: SmtpTestServer
) -> None:
    """Members of another list file who already got the issue are counted as such, with the
    list and the day they got it from."""
    run(folder, smtp_server, plan(folder))
    (folder / "kopia.csv").write_bytes((folder / "subscribers.csv").read_bytes())
    mailing = mailing_of(folder, subscribers="kopia.csv")
    copy = plan_send(mailing, findings=[])
    assert copy.nothing_to_send
    assert [(e.list_name, e.count) for e in copy.earlier] == [
        ("subscribers.csv", len(active_addresses(folder)))
    ]


def test_a_refused_plan_cannot_be_run(folder: Path, smtp_server: SmtpTestServer) -> None:
    """A plan the check found errors in raises when run (unless forced), and nothing is
    written or sent."""
    mailing = mailing_of(folder)
    error = Finding("error", "text", "a link without an address")
    assert plan_send(mailing, findings=[error], force=True).refusal == ""
    refused = plan_send(mailing, findings=[error])
    assert "--force" in refused.refusal
    before = file_digests(folder)
    with pytest.raises(SmakomError):
        run_send(refused, mailing, login=lambda: None)
    assert file_digests(folder) == before
    assert smtp_server.messages == []


def test_a_message_handed_over_whole_before_a_crash_is_planned_as_sent(
    folder: Path, smtp_server: SmtpTestServer
) -> None:
    """A run killed after the final "." of a message went to the system (the machine still
    up): the next plan counts it as already sent and names it, and the run leaves it out."""
    first = plan(folder)
    with Journal.open(first.journal, first.header, list_name="subscribers.csv") as journal:
        ticket = journal.mark_in_flight("anna.aberg@example.com")
        journal.mark_ending(ticket)
        journal.mark_handed(ticket)

    later = plan(folder)
    assert later.handed == ("anna.aberg@example.com",)
    assert (later.already, later.pending) == (1, first.pending - 1)
    report = run(folder, smtp_server, later)
    assert "anna.aberg@example.com" not in smtp_server.recipients()
    assert report.handed == ("anna.aberg@example.com",)
    assert report.report_file is not None
    assert "handed\tanna.aberg@example.com" in report.report_file.read_text(encoding="utf-8")
