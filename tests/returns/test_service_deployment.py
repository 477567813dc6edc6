"""The deployment recipes of docs/service.md: Caddy and nginx for real in front of `smakom
serve`, and the web hotel's passenger_wsgi.py.

Each test takes its recipe from the page itself (the ```caddyfile and ```nginx blocks), so the
page says what was tested. Only what a test machine needs is changed: plain http on a free
port of 127.0.0.1 instead of the name and its certificate, the service's port, and the
recipe's 10 s shortened to 2 s so a stalled client is cut off without a long wait.
"""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil
import pytest

from smakom_cli.audience.unsubscribe_links import make_token
from tests.processes import stop, wait_until_listening
from tests.returns.test_service_capacity import timed, trickling
from tests.service_server import (
    FORM,
    HOST,
    SECRET,
    SERVICE_KEY,
    RunningService,
    free_port,
    gmail_post,
    request,
    running_service,
)
from tests.tools import require_program

PAGE = Path(__file__).parents[2] / "docs" / "service.md"
KEY = SECRET.encode()
SHORTENED = 2


def recipe(language: str) -> str:
    """The one fenced block of that language on docs/service.md, its 10 s shortened."""
    [block] = re.findall(rf"^```{language}\n(.*?)^```$", PAGE.read_text("utf-8"), re.S | re.M)
    assert "10s" in block
    return block.replace("10s", f"{SHORTENED}s")


def test_the_passenger_file_runs_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """passenger_wsgi.py as the page gives it: a working application, its log lines kept."""
    [code] = re.findall(
        r"`passenger_wsgi.py`[^`]*?```python\n(.*?)^```$", PAGE.read_text("utf-8"), re.S | re.M
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SMAKOM_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setenv("SMAKOM_SERVICE_KEY", SERVICE_KEY)
    namespace: dict[str, object] = {}
    # The file's logging.basicConfig() sets up the root logger, bare as under Passenger;
    # as it was again afterwards.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    exec(compile(code, "passenger_wsgi.py", "exec"), namespace)
    application = namespace["application"]
    assert callable(application)
    body = b"List-Unsubscribe=One-Click"
    environ: dict[str, object] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/avregistrera",
        "QUERY_STRING": f"token={make_token(KEY, 'hotel@example.com')}",
        "CONTENT_TYPE": FORM,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    statuses: list[str] = []
    page = b"".join(application(environ, lambda status, _headers: statuses.append(status)))
    assert statuses == ["200 OK"]
    assert "Kontakta Charlotta Haskovec" in page.decode()
    assert (tmp_path / "smakom" / "service.sqlite3").exists()
    assert " INFO POST /avregistrera 200 " in capsys.readouterr().err


@contextmanager
def proxied(
    program: list[str], port: int, folder: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            program,
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=proxy_environment(folder),
        )
    try:
        wait_until_listening(process, port, lambda: log.read_text("utf-8", "replace"), 20)
        yield process
    finally:
        stop(process, timeout=5)


def proxy_environment(folder: Path) -> dict[str, str]:
    # Caddy keeps its state under HOME / XDG folders: this test's own.
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(folder), "XDG_DATA_HOME": str(folder),
            "XDG_CONFIG_HOME": str(folder)}  # fmt: skip


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    with running_service(tmp_path / "service.sqlite3") as running:
        yield running


def test_the_caddy_recipe_buffers_caps_and_passes_the_key(
    tmp_path: Path, service: RunningService
) -> None:
    """Caddy as docs/service.md configures it, in front of the service."""
    caddy = require_program("caddy", "caddy")
    port = free_port()
    config = recipe("caddyfile")
    config = config.replace("{\n", "{\n\tadmin off\n", 1)
    config = config.replace(
        "nyhetsbrev.smakom.se {", f"http://{HOST}:{port} {{\n\tbind {HOST}", 1
    ).replace("127.0.0.1:8080", f"{HOST}:{service.port}")
    (tmp_path / "Caddyfile").write_text(config, encoding="utf-8")
    command = [caddy, "run", "--config", "Caddyfile", "--adapter", "caddyfile"]
    with proxied(command, port, tmp_path, tmp_path / "caddy.log"):
        check_through_proxy(f"http://{HOST}:{port}", port, service)


def test_the_nginx_recipe_buffers_caps_and_passes_the_key(
    tmp_path: Path, service: RunningService
) -> None:
    """nginx's server block from docs/service.md, in a minimal nginx.conf of its own."""
    nginx = require_program("nginx", "nginx")
    port = free_port()
    block = recipe("nginx")
    block = re.sub(r"^\s*ssl_certificate.*\n", "", block, flags=re.M)
    block = block.replace("listen 443 ssl;", f"listen {HOST}:{port};")
    block = block.replace("127.0.0.1:8080", f"{HOST}:{service.port}")
    temp = "\n".join(
        f"    {kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root nginx would hand its workers to "nobody", who cannot enter pytest's tmp folder.
    user = "user root;\n" if os.name != "nt" and os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {tmp_path / 'nginx.pid'};\n"
        f"error_log {tmp_path / 'error.log'};\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log off;\n{temp}\n{block}}}\n",
        encoding="utf-8",
    )
    command = [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"]
    with proxied(command, port, tmp_path, tmp_path / "nginx.log"):
        check_through_proxy(f"http://{HOST}:{port}", port, service)


def connections_to(service: RunningService) -> int:
    """How many connections the service holds open right now."""
    held = psutil.Process(service.process.pid).net_connections(kind="tcp")
    return sum(1 for c in held if c.laddr.port == service.port and c.status == "ESTABLISHED")


def check_through_proxy(base: str, port: int, service: RunningService) -> None:
    """What each recipe must do: a one-click and the sync key get through; 200 idle and 100
    trickling clients lock nobody out; a stalled body is cut off in time; a large body is
    refused by the proxy; none of them reach the service's events."""
    link = f"{base}/avregistrera?token={make_token(KEY, 'proxied@example.com')}"
    assert gmail_post(link).status == 200
    events = request(
        "GET", f"{base}/smakom/events?after=0", headers={"Authorization": f"Bearer {SERVICE_KEY}"}
    )
    assert events.status == 200
    assert b'"action": "unsubscribed"' in events.body

    proxy = RunningService(service.process, port, service.database, service.log)
    with ExitStack() as stack:
        for _ in range(200):
            stack.enter_context(socket.create_connection((HOST, port), timeout=5))
        stack.enter_context(trickling(proxy, 100))
        time.sleep(0.5)
        # Buffered: not one of the trickling requests has reached the service yet.
        assert connections_to(service) < 10
        late = f"{base}/avregistrera?token={make_token(KEY, 'late@example.com')}"
        assert timed(lambda: request("GET", f"{base}/smakom/health", timeout=5)) < 2
        assert timed(lambda: gmail_post(late)) < 2

    with socket.create_connection((HOST, port), timeout=SHORTENED + 3) as stalled:
        stalled.sendall(
            f"POST /avregistrera HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {FORM}\r\n"
            "Content-Length: 26\r\n\r\nList".encode()
        )
        started = time.monotonic()
        # Closed by the proxy (nginx says 408; Caddy 2.6 an empty 200), never passed on.
        while stalled.recv(4096):
            pass
        assert time.monotonic() - started < SHORTENED + 2

    big = b"List-Unsubscribe=One-Click&x=" + b"y" * 20_000
    refused = request("POST", f"{base}/avregistrera?token={make_token(KEY, 'big@example.com')}",
                      big, {"Content-Type": FORM})  # fmt: skip
    # Caddy 2.6 answers 502 when request_body's cap stops the buffering (later ones 413).
    assert refused.status in (413, 502)
    # The service saw two POSTs, the one-clicks: nothing stalled, trickling or too large.
    posts = re.findall(r" INFO POST /avregistrera (\d{3}) ", service.log.read_text("utf-8"))
    assert posts == ["200", "200"]
    assert len(service.events()) == 2
