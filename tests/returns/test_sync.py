"""`smakom sync`: the one-click service's events into unsubscribed.csv, and the way there."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import keyring
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smakom_cli.audience.suppression import SuppressionList
from smakom_cli.audience.unsubscribe_links import make_token, subscriber_id
from smakom_cli.cli import app
from smakom_cli.config import load_config
from smakom_cli.delivery.journal import Journal, JournalHeader, known_keys
from smakom_cli.delivery.outcome import Outcome
from smakom_cli.errors import SmakomError
from smakom_cli.returns.sync import (
    _read_state,
    apply_events,
    fetch_events,
    last_sync,
    pending_unsubscribes,
    service_urls,
    state_path,
)
from tests.service_server import (
    FORM,
    SECRET,
    SERVICE_KEY,
    RunningService,
    free_port,
    gmail_post,
    press_undo,
    press_unsubscribe,
    request,
    running_service,
    service_environment,
)
from tests.smtp_server import closed_port

ISSUE = "issues/2021-01.md"
KEY = SECRET.encode()
LIST_ID = "nyhetsbrev.smakom.se"


def point_at(folder: Path, port: int) -> None:
    """The newsletter's [unsubscribe] url on a service on this machine."""
    path = folder / "smakom.toml"
    text = path.read_text(encoding="utf-8")
    old = 'url = "https://www.smakom.se/avregistrera"'
    assert old in text
    path.write_text(
        text.replace(old, f'url = "http://127.0.0.1:{port}/avregistrera"'), encoding="utf-8"
    )


def outbox_recipients(folder: Path) -> list[str]:
    parser = BytesParser(policy=policy.default)
    return [
        parser.parsebytes(eml.read_bytes())["To"].addresses[0].addr_spec.lower()
        for eml in sorted((folder / "outbox" / "2021-01").glob("*.eml"))
    ]


@pytest.fixture
def service(
    newsletter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningService]:
    """The example folder pointed at a running service; both sides hold the keys."""
    port = free_port()
    point_at(newsletter, port)
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setenv("SMAKOM_SERVICE_KEY", SERVICE_KEY)
    with running_service(tmp_path / "service.sqlite3", port=port) as running:
        yield running


def sync(runner: CliRunner) -> str:
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 0, result.output
    return result.output


def csv_rows(folder: Path) -> list[list[str]]:
    lines = (folder / "unsubscribed.csv").read_text(encoding="utf-8-sig").splitlines()
    return [line.split(",") for line in lines[1:]]


def test_end_to_end_a_one_click_unsubscribe_reaches_the_next_send(
    runner: CliRunner, newsletter: Path, tmp_path: Path
) -> None:
    """Dry run, Gmail's POST to a message's link, `smakom sync`: the next dry run skips her."""
    port = free_port()
    point_at(newsletter, port)
    # `smakom login` makes the link-signing key; a dry run alone signs with a throwaway one.
    login = runner.invoke(app, ["login"], input="ett-lösenord\n")
    assert "Made the key that signs the unsubscribe links" in login.output, login.output
    # The link is http:// to this machine, an error for a real send: the dry run says so
    # with exit 1, after writing every message.
    result = runner.invoke(app, ["send", ISSUE, "--dry-run"])
    assert result.exit_code == 1, result.output
    assert "a real send would stop" in result.output
    assert "cecilia.arlig@example.com" in outbox_recipients(newsletter)
    eml = next((newsletter / "outbox" / "2021-01").glob("*cecilia.arlig*.eml"))
    header = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())["List-Unsubscribe"]
    link = re.search(r"<(http://127\.0\.0\.1:\d+/avregistrera\?token=[^>]+)>", header)
    assert link and "cecilia" not in link.group(1)

    # The service on "the server" has the office's signing key from its keyring here
    # (--config), and the sync key from its environment.
    env = service_environment(SMAKOM_UNSUBSCRIBE_SECRET="")
    config = str(newsletter / "smakom.toml")
    with running_service(tmp_path / "s.sqlite3", env=env, args=["--config", config], port=port):
        assert gmail_post(link.group(1)).status == 200
        login = runner.invoke(app, ["login", "--service-key"], input=f"{SERVICE_KEY}\n")
        assert login.exit_code == 0, login.output
        assert SERVICE_KEY not in login.output
        assert "cecilia.arlig@example.com is now unsubscribed" in sync(runner)

    result = runner.invoke(app, ["send", ISSUE, "--dry-run"])
    assert result.exit_code == 1, result.output
    assert re.search(r"Skipped as unsubscribed\s+2\b", result.output)
    assert "cecilia.arlig@example.com" not in outbox_recipients(newsletter)
    assert csv_rows(newsletter)[-1][:2] == ["cecilia.arlig@example.com", "unsubscribed"]


def test_sync_keeps_the_time_and_the_way_the_reader_left(
    runner: CliRunner, newsletter: Path, service: RunningService
) -> None:
    """A one-click POST and the page's button arrive as `one-click` and `web`, at their time."""
    gmail_post(service.link(make_token(KEY, "anna.aberg@example.com")))
    press_unsubscribe(service.link(make_token(KEY, "BJORN.ostlund@example.org")))
    events = service.events()
    output = sync(runner)
    assert "anna.aberg@example.com is now unsubscribed" in output
    assert "bjorn.ostlund@example.org is now unsubscribed" in output
    rows = csv_rows(newsletter)[-2:]
    assert [row[0] for row in rows] == ["anna.aberg@example.com", "bjorn.ostlund@example.org"]
    assert [row[2] for row in rows] == [event["at"] for event in events]
    assert [row[3] for row in rows] == ["one-click", "web"]


def test_sync_again_changes_nothing(
    runner: CliRunner, newsletter: Path, service: RunningService
) -> None:
    """A second sync, or the same request again, leaves unsubscribed.csv as it was."""
    link = service.link(make_token(KEY, "anna.aberg@example.com"))
    gmail_post(link)
    sync(runner)
    before = (newsletter / "unsubscribed.csv").read_bytes()
    gmail_post(link)
    assert "0 changes, 1 already recorded" in sync(runner)
    assert "0 changes, 0 already recorded" in sync(runner)
    assert (newsletter / "unsubscribed.csv").read_bytes() == before


def test_undo_on_the_page_resubscribes(
    runner: CliRunner, newsletter: Path, service: RunningService
) -> None:
    """A reader who pressed Ångra after syncing is subscribed again at the next sync."""
    link = service.link(make_token(KEY, "anna.aberg@example.com"))
    page, page_url = press_unsubscribe(link)
    sync(runner)
    assert press_undo(page_url, page).status == 303
    assert "anna.aberg@example.com is subscribed again" in sync(runner)
    assert not SuppressionList(newsletter / "unsubscribed.csv").is_suppressed(
        "anna.aberg@example.com"
    )


def test_the_mails_link_alone_never_resubscribes_after_sync(
    runner: CliRunner, newsletter: Path, service: RunningService
) -> None:
    """Whoever holds the mail's link (forwarded, in a log) cannot resubscribe its reader:
    after every try, any method, body and Origin, the next sync leaves them unsubscribed."""
    link = service.link(make_token(KEY, "anna.aberg@example.com"))
    assert gmail_post(link).status == 200
    sync(runner)
    for method, body, headers in [
        ("POST", b"action=resubscribe", {"Content-Type": FORM, "Origin": service.base}),
        ("POST", b"action=resubscribe&undo=x", {"Content-Type": FORM}),
        ("POST", b"List-Unsubscribe=One-Click&action=resubscribe", {"Content-Type": FORM}),
        ("PUT", b"action=resubscribe", {"Content-Type": FORM}),
        ("GET", None, {"Origin": "https://evil.example"}),
    ]:
        request(method, link, body, headers)
    assert "0 changes" in sync(runner)
    assert SuppressionList(newsletter / "unsubscribed.csv").is_suppressed("anna.aberg@example.com")


def test_an_undo_from_a_database_before_undo_tokens_is_left_out(
    runner: CliRunner, newsletter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before undo tokens: its stored addresses are wiped at start, its
    unsubscribe still counts, and its unchecked resubscribe is reported, never applied."""
    port = free_port()
    point_at(newsletter, port)
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setenv("SMAKOM_SERVICE_KEY", SERVICE_KEY)
    database = tmp_path / "old.sqlite3"
    with sqlite3.connect(database) as db:
        db.executescript(OLD_SCHEMA)
        ident = subscriber_id(KEY, "anna.aberg@example.com")
        db.executemany(
            "INSERT INTO events (subscriber_id, address, action, source, at) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (
                    ident,
                    "anna.aberg@example.com",
                    "unsubscribed",
                    "one-click",
                    "2026-01-01T10:00:00Z",
                ),
                (ident, "anna.aberg@example.com", "resubscribed", "web", "2026-01-01T10:05:00Z"),
            ],
        )
    db.close()
    with running_service(database, port=port):
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("old.sqlite3*"))
        assert b"anna.aberg" not in stored
        output = sync(runner)
    assert "anna.aberg@example.com is now unsubscribed" in output
    assert "1 resubscribe was not made with the page's one-time undo token" in output
    assert SuppressionList(newsletter / "unsubscribed.csv").is_suppressed("anna.aberg@example.com")


OLD_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('service', 'c0ffee0123456789'), ('delivered', '0');
CREATE TABLE events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL CHECK (action IN ('unsubscribed', 'resubscribed')),
    source TEXT NOT NULL CHECK (source IN ('one-click', 'web')),
    at TEXT NOT NULL
);
"""


def test_fetch_writes_nothing_and_names_who_is_leaving(
    newsletter: Path, service: RunningService
) -> None:
    """The read-only half: nothing written, the leaving address known; the write half stores it."""
    gmail_post(service.link(make_token(KEY, "anna.aberg@example.com")))
    config = load_config(newsletter / "smakom.toml")
    before = (newsletter / "unsubscribed.csv").read_bytes()
    batch = fetch_events(config, SERVICE_KEY, KEY)
    assert pending_unsubscribes(batch) == {"anna.aberg@example.com"}
    assert (newsletter / "unsubscribed.csv").read_bytes() == before
    assert not state_path(config).exists()
    assert last_sync(config) is None
    result = apply_events(config, batch)
    assert result.unsubscribed == ("anna.aberg@example.com",)
    synced = last_sync(config)
    assert synced is not None and synced.tzinfo is not None
    assert json.loads(state_path(config).read_text(encoding="utf-8"))["cursor"] == batch.cursor


def test_a_wrong_sync_key_is_one_clear_line(
    runner: CliRunner, newsletter: Path, service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service answers 401 to a wrong key; the CLI says which key to fix and writes nothing."""
    gmail_post(service.link(make_token(KEY, "anna.aberg@example.com")))
    monkeypatch.setenv("SMAKOM_SERVICE_KEY", "fel-nyckel-dpX3EqtYvmzE3NQ0K7iYwEsQpb5hHbrCm0y")
    before = (newsletter / "unsubscribed.csv").read_bytes()
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    assert "refused the sync key (401)" in result.output
    assert "smakom login --service-key" in result.output
    assert "Traceback" not in result.output
    assert (newsletter / "unsubscribed.csv").read_bytes() == before
    assert not (newsletter / "unsubscribed.sync.json").exists()


def test_an_unreachable_service_is_one_clear_line(
    runner: CliRunner, newsletter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing listening, sync says it cannot reach the service and exits 1."""
    monkeypatch.setenv("SMAKOM_SERVICE_KEY", SERVICE_KEY)
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", SECRET)
    with closed_port() as port:
        point_at(newsletter, port)
        result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    assert "cannot reach the one-click service" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_sync_without_a_stored_key_says_how_to_store_it(
    runner: CliRunner, newsletter: Path
) -> None:
    """No sync key in the keyring or the environment: the error names `smakom login`."""
    point_at(newsletter, 1)
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    assert "smakom login --service-key" in result.output


def test_login_refuses_a_short_sync_key(runner: CliRunner, newsletter: Path) -> None:
    """A guessable sync key is refused before anything is stored."""
    result = runner.invoke(app, ["login", "--service-key"], input="kort\n")
    assert result.exit_code == 1
    assert "at least 32" in result.output
    assert keyring.get_password("smakom", f"service-key:{LIST_ID}") is None


def test_an_unknown_reader_is_kept_until_found(
    runner: CliRunner, newsletter: Path, service: RunningService
) -> None:
    """A genuine link matching nobody known is reported, kept, and applied once they reappear."""
    gmail_post(service.link(make_token(KEY, "ny.person@example.se")))
    output = sync(runner)
    assert "1 request came from a genuine link" in output
    assert "1 request" in sync(runner)
    with (newsletter / "subscribers.csv").open("a", encoding="utf-8") as file:
        file.write("ny.person@example.se;Ny Person;Åre kommun\n")
    output = sync(runner)
    assert "ny.person@example.se is now unsubscribed" in output
    assert "genuine link" not in output


def test_a_new_service_database_is_read_from_its_start(
    runner: CliRunner, newsletter: Path, service: RunningService, tmp_path: Path
) -> None:
    """When the server's database is replaced, the next sync reads it from its start."""
    for address in ("anna.aberg@example.com", "bjorn.ostlund@example.org"):
        gmail_post(service.link(make_token(KEY, address)))
    sync(runner)
    service.process.terminate()
    service.process.wait(timeout=5)
    with running_service(tmp_path / "new.sqlite3", port=service.port) as fresh:
        gmail_post(fresh.link(make_token(KEY, "cecilia.arlig@example.com")))
        assert "cecilia.arlig@example.com is now unsubscribed" in sync(runner)


def test_a_damaged_sync_state_is_an_error(
    runner: CliRunner, newsletter: Path, service: RunningService
) -> None:
    """An edited unsubscribed.sync.json stops the sync with what to do, and is not overwritten."""
    (newsletter / "unsubscribed.sync.json").write_text('{"cursor": "x"}', encoding="utf-8")
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    assert "unsubscribed.sync.json is damaged. Delete it" in result.output
    assert (newsletter / "unsubscribed.sync.json").read_text(encoding="utf-8") == '{"cursor": "x"}'


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.text(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["service", "cursor", "unresolved", "id", "at"]), inner
                )
            ),
            max_leaves=8,
        ).map(json.dumps),
    )
)
def test_any_sync_state_file_is_read_or_refused(tmp_path: Path, text: str) -> None:
    """Whatever is in the sync state file, it is read whole or refused with one sentence."""
    path = tmp_path / "unsubscribed.sync.json"
    path.write_text(text, encoding="utf-8")
    try:
        state = _read_state(path)
    except SmakomError as exc:
        assert "Delete it" in str(exc)
    else:
        assert state.cursor >= 0


def test_the_service_lives_beside_the_configured_url(newsletter: Path) -> None:
    """Events and health are on the url's origin, under its folder (a web hotel's sub-path)."""
    path = newsletter / "smakom.toml"
    text = path.read_text(encoding="utf-8").replace(
        "https://www.smakom.se/avregistrera", "https://webbhotell.se/nyhetsbrev/avregistrera?x=1"
    )
    path.write_text(text, encoding="utf-8")
    urls = service_urls(load_config(path))
    assert urls is not None
    assert urls.events == "https://webbhotell.se/nyhetsbrev/smakom/events"
    assert urls.health == "https://webbhotell.se/nyhetsbrev/smakom/health"


def test_check_warns_when_the_service_answers_nothing(runner: CliRunner, newsletter: Path) -> None:
    """`smakom check` warns that one-click unsubscribes would go unheard; --offline asks nothing."""
    with closed_port() as port:
        point_at(newsletter, port)
        result = runner.invoke(app, ["check", ISSUE])
        offline = runner.invoke(app, ["check", ISSUE, "--offline"])
    assert "Warning: smakom.toml: the one-click unsubscribe service at" in result.output
    assert "/smakom/health answers nothing" in result.output
    assert "one-click unsubscribe service" not in offline.output


def test_check_is_quiet_when_the_service_answers(
    runner: CliRunner, newsletter: Path, service: RunningService
) -> None:
    """With `smakom serve` behind the url, the check has no warning about it."""
    result = runner.invoke(app, ["check", ISSUE])
    assert "one-click unsubscribe service" not in result.output


def test_a_mailto_alone_is_an_error(runner: CliRunner, newsletter: Path) -> None:
    """Without an https one-click url the check fails: Gmail and Yahoo require one."""
    path = newsletter / "smakom.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('url = "https://www.smakom.se/avregistrera"', ""), "utf-8")
    result = runner.invoke(app, ["check", ISSUE, "--offline"])
    assert result.exit_code == 1
    assert "Error: smakom.toml: no https [unsubscribe] url" in result.output


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("http://127.0.0.1:8080/avregistrera", True),
        ("http://localhost/avregistrera", True),
        ("http://www.smakom.se/avregistrera", False),
        ("http://127.0.0.1.example.org/avregistrera", False),
        ("ftp://127.0.0.1/avregistrera", False),
    ],
)
def test_plain_http_only_to_this_machine(newsletter: Path, url: str, accepted: bool) -> None:
    """[unsubscribe] url may be http:// only for 127.0.0.1 or localhost, to try the service."""
    path = newsletter / "smakom.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("https://www.smakom.se/avregistrera", url), "utf-8")
    if accepted:
        assert load_config(path).unsubscribe.url == url
    else:
        with pytest.raises(SmakomError, match="must start with https://"):
            load_config(path)


def test_unsubscribe_takes_a_link_of_someone_only_in_the_journals(
    runner: CliRunner, newsletter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader since removed from the list is found through the send journals in sent/."""
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", SECRET)
    header = JournalHeader("2020-12", "Nyhetsbrev December 2020", "d" * 64)
    journal = newsletter / "sent" / "2020-12.jsonl"
    with Journal.open(journal, header, list_name="subscribers.csv") as sending:
        sending.mark_ending(sending.mark_in_flight("gammal@example.se"))
        sending.record(Outcome.SENT, "gammal@example.se")
    with journal.open("ab") as file:
        file.write(b'{"event":"compl')  # a crash tore the last line
    link = f"https://www.smakom.se/avregistrera?token={make_token(KEY, 'gammal@example.se')}"
    result = runner.invoke(app, ["unsubscribe", link])
    assert result.exit_code == 0, result.output
    assert "gammal@example.se is now unsubscribed" in result.output


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0), junk=st.binary(max_size=40))
def test_a_damaged_journal_is_read_whole_or_refused(tmp_path: Path, cut: int, junk: bytes) -> None:
    """Looking up addresses in a cut or damaged journal reads every address it holds or
    names the damage, never fewer: the one journal reader, with its checksums."""
    folder = tmp_path / "sent"
    folder.mkdir(exist_ok=True)
    path = folder / "2021-01.jsonl"
    path.unlink(missing_ok=True)
    header = JournalHeader("2021-01", "Nyhetsbrev", "e" * 64)
    names = [f"p{n}@example.se" for n in range(4)]
    with Journal.open(path, header, list_name="subscribers.csv") as sending:
        for name in names:
            sending.mark_ending(sending.mark_in_flight(name))
            sending.record(Outcome.SENT, name)
    whole = path.read_bytes()
    cut %= len(whole) + 1
    path.write_bytes(whole[:cut] + junk)
    try:
        keys = set(known_keys(folder))
    except SmakomError as exc:
        assert "2021-01.jsonl" in str(exc)
    else:
        # Every address whose first line is whole in what is left is found.
        kept = {n for n in names if whole.find(b"\n", whole.find(n.encode())) < cut}
        assert kept <= keys


def test_an_old_undo_does_not_overrule_a_newer_unsubscribe(
    runner: CliRunner, newsletter: Path, service: RunningService
) -> None:
    """Ångra pressed before the office unsubscribed the reader (say, by phone) is not applied."""
    link = service.link(make_token(KEY, "anna.aberg@example.com"))
    page, page_url = press_unsubscribe(link)
    assert press_undo(page_url, page).status == 303
    # The office records an unsubscribe after the click (unsubscribed.csv keeps seconds).
    time.sleep(1.1)
    result = runner.invoke(app, ["unsubscribe", "anna.aberg@example.com", "--reason", "telefon"])
    assert result.exit_code == 0, result.output
    before = (newsletter / "unsubscribed.csv").read_bytes()
    output = sync(runner)
    assert "anna.aberg@example.com pressed Ångra on the unsubscribe page, but" in output
    assert (newsletter / "unsubscribed.csv").read_bytes() == before


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a@example.se", "B@example.se", "=c@example.se", "d@"]),
            st.sampled_from(["unsubscribed", "resubscribed", "x"]),
            st.sampled_from(["2025-03-01T09:30:00Z", "2025-03-01T09:30:00", "2025-03-01", "igår"]),
        ),
        max_size=5,
    )
)
def test_event_times_of_any_suppression_file_are_read_or_refused(
    tmp_path: Path, rows: list[tuple[str, str, str]]
) -> None:
    """The times sync compares with come from a file read whole, or refused in one sentence."""
    path = tmp_path / "unsubscribed.csv"
    lines = ["email,action,when,source,reason", *(f"{e},{a},{w},command," for e, a, w in rows)]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    try:
        times = SuppressionList(path).latest_times()
    except SmakomError as exc:
        assert "line" in str(exc)
    else:
        assert all(moment.tzinfo is not None for moment in times.values())
        assert set(times) == {e.lower() for e, _a, _w in rows}


def test_a_short_sync_key_in_the_environment_is_refused(
    runner: CliRunner, newsletter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SMAKOM_SERVICE_KEY shorter than 32 characters is an error before anything is fetched."""
    monkeypatch.setenv("SMAKOM_SERVICE_KEY", "kort")
    point_at(newsletter, 1)
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    assert "SMAKOM_SERVICE_KEY must be at least 32 random characters" in result.output
