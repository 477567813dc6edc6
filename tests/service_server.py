"""`smakom serve` in a subprocess on 127.0.0.1, and a small real HTTP client to talk to it.

with running_service(tmp_path / "service.sqlite3") as service:
    reply = service.post(service.link(make_token(SECRET, "anna@example.com")))
    assert reply.status == 200
    assert service.events()[0]["action"] == "unsubscribed"
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from tests.processes import stop, wait_until_listening

HOST = "127.0.0.1"
# Random, as `smakom serve` refuses keys too regular to be random.
SECRET = "hemlig-nyckel-SguZpY4Y7XqXa49sQA6eOZzOfBn97QkZo2dhlabnXD0"
SERVICE_KEY = "synknyckel-MH4S7jmXoD08yUko4puEUWLRvkURxvI7cjyMc12bhzQ"
GMAIL_BODY = b"List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One HTTP request with exactly these headers (http.client adds Host and Content-Length)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        connection.close()


def gmail_post(url: str) -> Reply:
    """The one-click POST exactly as Gmail sends it (RFC 8058 §3.1)."""
    return request(
        "POST", url, GMAIL_BODY, {"Content-Type": FORM, "User-Agent": "Mozilla/5.0 (Gmail)"}
    )


def press_unsubscribe(link: str) -> tuple[Reply, str]:
    """The page's button: its POST, then the page it redirects to (as a browser does), and the
    address of that page, which carries the one-time undo token."""
    posted = request("POST", link, b"action=unsubscribe", {"Content-Type": FORM})
    assert posted.status == 303, posted
    after = urljoin(link, posted.headers["location"])
    return request("GET", after), after


def press_undo(page_url: str, page: Reply) -> Reply:
    """ "Ångra" on the page after the unsubscribe: the form's fields posted to its address."""
    undo = undo_token(page_url)
    assert f'name="undo" value="{undo}"' in page.text
    return request(
        "POST", page_url, f"action=resubscribe&undo={undo}".encode(), {"Content-Type": FORM}
    )


def undo_token(page_url: str) -> str:
    return parse_qs(urlsplit(page_url).query)["undo"][0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningService:
    process: subprocess.Popen[bytes]
    port: int
    database: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def link(self, token: str, path: str = "/avregistrera") -> str:
        return f"{self.base}{path}?token={token}"

    def events(self, after: int = 0, key: str = SERVICE_KEY) -> list[dict[str, Any]]:
        reply = request(
            "GET",
            f"{self.base}/smakom/events?after={after}",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert reply.status == 200, reply
        events: list[dict[str, Any]] = json.loads(reply.body)["events"]
        return events


def service_environment(**extra: str) -> dict[str, str]:
    """This process's environment (the test keyring included) with the service's secrets."""
    env = {**os.environ, "SMAKOM_UNSUBSCRIBE_SECRET": SECRET, "SMAKOM_SERVICE_KEY": SERVICE_KEY}
    env.update(extra)
    return {k: v for k, v in env.items() if v}


@contextmanager
def running_service(
    database: Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    cwd: Path | None = None,
    port: int = 0,
) -> Iterator[RunningService]:
    """`smakom serve` on `port` (or a free one), once it accepts connections; then stopped."""
    port = port or free_port()
    # Beside the database, or beside the folder the service is to create for it.
    folder = next(parent for parent in database.parents if parent.is_dir())
    log = folder / f"serve-{port}.log"
    command = [
        sys.executable, "-m", "smakom_cli", "serve",
        "--host", HOST, "--port", str(port), "--data", str(database), *args,
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env=dict(env) if env is not None else service_environment(),
            cwd=cwd or folder,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_listening(process, port, lambda: log.read_text(encoding="utf-8"), START_TIMEOUT)
        yield RunningService(process, port, database, log)
    finally:
        stop(process, timeout=5)
