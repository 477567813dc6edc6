"""The one-click unsubscribe service, run by `smakom serve` and spoken to over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from smakom_cli.audience.unsubscribe_links import make_token, subscriber_id
from tests.service_server import (
    FORM,
    SECRET,
    RunningService,
    free_port,
    gmail_post,
    request,
    running_service,
    service_environment,
)

KEY = SECRET.encode()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One service for this module's tests; each test uses addresses of its own."""
    with running_service(tmp_path_factory.mktemp("service") / "service.sqlite3") as running:
        yield running


def events_for(service: RunningService, address: str) -> list[dict[str, Any]]:
    """The service's events for this reader's links."""
    ident = subscriber_id(KEY, address)
    return [event for event in service.events() if event["id"] == ident]


def legacy_token(secret: bytes, address: str) -> str:
    """A token as issues sent before opaque links carried it: the address, readable."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signature = hmac.new(secret, address.encode(), hashlib.sha256).digest()[:16]
    return f"{b64(address.encode())}.{b64(signature)}"


def test_gmails_one_click_post_unsubscribes(service: RunningService) -> None:
    """Gmail's POST (form-encoded List-Unsubscribe=One-Click) is recorded and answered 200."""
    reply = gmail_post(service.link(make_token(KEY, "gmail@example.com")))
    assert reply.status == 200
    assert "Du är avregistrerad" in reply.text
    [event] = events_for(service, "gmail@example.com")
    assert event["address"] == ""
    assert (event["action"], event["source"]) == ("unsubscribed", "one-click")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["at"])


def test_an_empty_post_unsubscribes_too(service: RunningService) -> None:
    """A POST without a body (some providers send one) unsubscribes as well."""
    reply = request("POST", service.link(make_token(KEY, "tom@example.com")), b"")
    assert reply.status == 200
    assert [e["source"] for e in events_for(service, "tom@example.com")] == ["one-click"]


def test_a_multipart_post_unsubscribes(service: RunningService) -> None:
    """RFC 8058 also allows the one-click body as multipart/form-data."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n--b--\r\n"
    )
    link = service.link(make_token(KEY, "multipart@example.com"))
    reply = request("POST", link, body, {"Content-Type": "multipart/form-data; boundary=b"})
    assert reply.status == 200
    assert [e["source"] for e in events_for(service, "multipart@example.com")] == ["one-click"]


def test_get_never_unsubscribes(service: RunningService) -> None:
    """A link scanner's GET (or HEAD) shows a page with a POST button and records nothing."""
    link = service.link(make_token(KEY, "scanned@example.com"))
    page = request("GET", link)
    assert page.status == 200
    assert '<form method="post">' in page.text
    assert "Avregistrera mig" in page.text
    assert "<script" not in page.text
    assert request("HEAD", link).status == 200
    assert events_for(service, "scanned@example.com") == []


def test_pages_send_strict_security_headers(service: RunningService) -> None:
    """No referrer, no framing, no script, only the page's own style, and never a cookie."""
    page = request("GET", service.link(make_token(KEY, "anna@example.com")))
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    assert "set-cookie" not in page.headers
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "form-action 'self'" in policy
    style = re.search(r"<style>(.*?)</style>", page.text, re.DOTALL)
    assert style
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy


def forged_tokens() -> dict[str, str]:
    token = make_token(KEY, "anna@example.com")
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    other_key = make_token(b"en annan nyckel som inte ar var" * 2, "anna@example.com")
    legacy = legacy_token(KEY, "anna@example.com")
    forged_legacy = (
        legacy_token(b"fel", "bo@example.com").split(".")[0] + "." + legacy.split(".")[1]
    )
    return {
        "truncated": token[:-3],
        "one character changed": flipped,
        "signed with another key": other_key,
        "old-style, address swapped": forged_legacy,
        "old-style, signature cut": legacy[:-4],
        "garbage": "%00%ff<script>",
        "empty": "",
    }


def test_forged_and_truncated_tokens_are_refused(service: RunningService) -> None:
    """A token that does not verify gets a plain error page, and is never recorded."""
    before = service.events()
    for name, token in forged_tokens().items():
        link = service.link(token)
        for reply in (request("GET", link), gmail_post(link)):
            assert reply.status == 400, name
            assert "Länken fungerar inte" in reply.text
            assert "<form" not in reply.text
    assert request("POST", f"{service.base}/avregistrera", b"").status == 400
    assert service.events() == before


def test_links_from_before_opaque_tokens_keep_working(service: RunningService) -> None:
    """A link with the old readable token, still in people's inboxes, unsubscribes its reader."""
    reply = gmail_post(service.link(legacy_token(KEY, "eva@example.com")))
    assert reply.status == 200
    [event] = events_for(service, "eva@example.com")
    assert event["address"] == "eva@example.com"
    assert event["id"] == subscriber_id(KEY, "eva@example.com")


def test_new_links_show_no_address(service: RunningService) -> None:
    """Neither the link nor the service's log nor its database holds the reader's address."""
    link = service.link(make_token(KEY, "hemlig.person@kommun.se"))
    assert gmail_post(link).status == 200
    assert "hemlig" not in link and "kommun" not in link
    stored = b"".join(p.read_bytes() for p in service.database.parent.glob("service.sqlite3*"))
    assert b"hemlig" not in stored
    assert b"hemlig" not in service.log.read_bytes()


def test_oversized_bodies_are_refused(service: RunningService) -> None:
    """A body over 4 KB is refused with 413 and records nothing."""
    before = service.events()
    link = service.link(make_token(KEY, "big@example.com"))
    reply = request(
        "POST", link, b"List-Unsubscribe=One-Click&x=" + b"y" * 5000, {"Content-Type": FORM}
    )
    assert reply.status == 413
    assert service.events() == before


def test_a_replay_is_harmless(service: RunningService) -> None:
    """The same POST again adds nothing until a sync has fetched the first one."""
    link = service.link(make_token(KEY, "replay@example.com"))
    for _ in range(3):
        assert gmail_post(link).status == 200
    assert len(events_for(service, "replay@example.com")) == 1
    # Once a sync has fetched it, a new request is recorded again: the office may have
    # resubscribed the reader meanwhile.
    assert gmail_post(link).status == 200
    assert len(events_for(service, "replay@example.com")) == 2


def test_the_page_buttons_unsubscribe_and_undo(service: RunningService) -> None:
    """The page's button records a web unsubscribe; "Ångra" records a resubscribe."""
    link = service.link(make_token(KEY, "buttons@example.com"))
    done = request("POST", link, b"action=unsubscribe", {"Content-Type": FORM})
    assert "Du är avregistrerad" in done.text
    assert 'value="resubscribe"' in done.text and "Ångra" in done.text
    undone = request("POST", link, b"action=resubscribe", {"Content-Type": FORM})
    assert undone.status == 200
    assert "Du prenumererar igen" in undone.text
    assert [(e["action"], e["source"]) for e in events_for(service, "buttons@example.com")] == [
        ("unsubscribed", "web"),
        ("resubscribed", "web"),
    ]


def test_a_proof_link_says_it_is_a_proof_and_records_nothing(service: RunningService) -> None:
    """A colleague who presses Unsubscribe on a proof, or its page's link, unsubscribes nobody."""
    link = service.link(make_token(KEY, "proof@example.com", proof=True))
    replies = [
        gmail_post(link),
        request("GET", link),
        request("POST", link, b"action=unsubscribe", {"Content-Type": FORM}),
    ]
    for reply in replies:
        assert reply.status == 200
        assert "Det här är ett provutskick" in reply.text
        assert "<form" not in reply.text
    assert events_for(service, "proof@example.com") == []


def test_fifty_parallel_posts_are_all_recorded_once(service: RunningService) -> None:
    """Fifty readers pressing Unsubscribe at the same moment: fifty 200s, fifty events."""
    addresses = [f"reader{i}@example.com" for i in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        replies = list(pool.map(lambda a: gmail_post(service.link(make_token(KEY, a))), addresses))
    assert [r.status for r in replies] == [200] * 50
    expected = {subscriber_id(KEY, a) for a in addresses}
    ids = [e["id"] for e in service.events() if e["id"] in expected]
    assert sorted(ids) == sorted(expected)


def test_the_sync_endpoint_needs_the_key(service: RunningService) -> None:
    """Without the right bearer key the events are refused with 401 and nothing else."""
    assert gmail_post(service.link(make_token(KEY, "key@example.com"))).status == 200
    url = f"{service.base}/smakom/events?after=0"
    for headers in ({}, {"Authorization": "Bearer fel"}, {"Authorization": f"Basic {SECRET}"}):
        reply = request("GET", url, headers=headers)
        assert reply.status == 401
        assert reply.body == b""
    assert len(events_for(service, "key@example.com")) == 1


def test_health_and_robots(service: RunningService) -> None:
    """The health address answers "ok"; crawlers are asked to stay away."""
    assert request("GET", f"{service.base}/smakom/health").body == b"ok\n"
    assert b"Disallow: /" in request("GET", f"{service.base}/robots.txt").body


def test_serve_refuses_to_start_without_its_keys(tmp_path: Path) -> None:
    """Without the link-signing key the service says which variable to set, and exits."""
    import subprocess
    import sys

    env = service_environment(SMAKOM_UNSUBSCRIBE_SECRET="")
    result = subprocess.run(
        [sys.executable, "-m", "smakom_cli", "serve", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "SMAKOM_UNSUBSCRIBE_SECRET" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL does not exist on Windows")
def test_a_killed_service_loses_no_request_it_answered(tmp_path: Path) -> None:
    """Killed with SIGKILL mid-traffic, the service has every request it answered 200."""
    database = tmp_path / "service.sqlite3"
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with running_service(database) as service:

        def reader(number: int) -> None:
            for i in range(1000):
                if stop.is_set():
                    return
                address = f"r{number}-{i}@example.com"
                try:
                    reply = gmail_post(service.link(make_token(KEY, address)))
                except OSError:
                    return
                if reply.status == 200:
                    with lock:
                        answered.append(address)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(answered) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        service.process.send_signal(signal.SIGKILL)
        service.process.wait(timeout=5)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert len(answered) >= 40
    with running_service(database) as restarted:
        recorded = {e["id"] for e in restarted.events()}
    assert {subscriber_id(KEY, a) for a in answered} <= recorded
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
