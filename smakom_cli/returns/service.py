"""The one-click unsubscribe service (RFC 8058): the web side of `[unsubscribe] url`.

A WSGI application, so it runs wherever a small organisation can host Python (Passenger on
a web hotel, waitress or gunicorn on a server; `smakom serve` runs it with waitress). Its
state is one SQLite database of events; it holds no subscriber list and no addresses, only
the opaque ids of new links (and the address of a link from before opaque links).

- `POST <page>?token=…` (Gmail's and Yahoo's one-click, or the page's button) records an
  unsubscribe and answers 200; no cookie, login or CSRF token (RFC 8058 §3).
- `GET <page>?token=…` never changes anything (link scanners fetch every link): it shows a
  page with one button that POSTs, and after it an undo button that POSTs a resubscribe.
- A proof's link (`smakom send --to`) only shows a page saying so, and records nothing.
- `GET <base>/smakom/events?after=CURSOR` with `Authorization: Bearer KEY`: the events after
  the cursor, as JSON, for `smakom sync`. `GET <base>/smakom/health`: "ok".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from smakom_cli.audience.unsubscribe_links import (
    PROOF_LINK_TEXT,
    PROOF_LINK_TITLE,
    TokenSubject,
    read_token,
)
from smakom_cli.errors import SmakomError

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from smakom_cli.config import Config

EVENTS_PATH = "/smakom/events"
HEALTH_PATH = "/smakom/health"
UNSUBSCRIBED = "unsubscribed"
RESUBSCRIBED = "resubscribed"
# RFC 8058's body is 26 bytes; a form with one field is not much more.
MAX_BODY_BYTES = 4096
EVENTS_PER_PAGE = 1000
MIN_KEY_LENGTH = 32
_COLOUR = re.compile(r"#[0-9A-Fa-f]{3,8}|[A-Za-z]{3,20}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL CHECK (action IN ('unsubscribed', 'resubscribed')),
    source TEXT NOT NULL CHECK (source IN ('one-click', 'web')),
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_subscriber ON events (subscriber_id, cursor);
"""


@dataclass(frozen=True)
class ServiceSettings:
    """What the service needs: its database, the two keys, and the newsletter's look."""

    database: Path
    secret: bytes
    service_key: str
    name: str = "Nyhetsbrev"
    primary_color: str = "#005a7a"
    background_color: str = "#eef2f4"
    text_color: str = "#2b2b2b"


def settings_for(
    database: Path, secret: bytes, service_key: str, config: Config | None = None
) -> ServiceSettings:
    """Settings with the newsletter's name and colours from smakom.toml, when there is one."""
    if config is None:
        return ServiceSettings(database, secret, service_key)
    brand = config.brand
    return ServiceSettings(
        database,
        secret,
        service_key,
        name=config.newsletter.name,
        primary_color=brand.primary_color,
        background_color=brand.background_color,
        text_color=brand.text_color,
    )


@dataclass(frozen=True)
class _Response:
    status: str
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    extra: tuple[tuple[str, str], ...] = ()


def make_app(settings: ServiceSettings) -> WSGIApplication:
    """The WSGI application; creates the database (WAL mode) when it does not exist yet."""
    # Short keys would make links or the event list guessable (credentials.py asks the same).
    if len(settings.secret) < MIN_KEY_LENGTH:
        raise SmakomError(
            f"the one-click service needs the link-signing key (at least {MIN_KEY_LENGTH} "
            "characters), the one the office's unsubscribe links are signed with."
        )
    if len(settings.service_key) < MIN_KEY_LENGTH:
        raise SmakomError(
            f"the one-click service needs a sync key of at least {MIN_KEY_LENGTH} random "
            "characters."
        )
    _create_database(settings.database)
    pages = _Pages(settings)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = _route(settings, pages, environ)
        except sqlite3.Error:
            # Never a 200 for what was not stored: the provider may try again later.
            response = pages.message("503 Service Unavailable", "Försök igen om en stund", "")
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", pages.policy),
            *response.extra,
        ]
        start_response(response.status, headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else response.body]

    return app


def _route(settings: ServiceSettings, pages: _Pages, environ: WSGIEnvironment) -> _Response:
    path = environ.get("PATH_INFO", "") or "/"
    method = environ.get("REQUEST_METHOD", "GET")
    if path == HEALTH_PATH:
        with _connect(settings.database) as db:
            db.execute("SELECT count(*) FROM meta").fetchone()
        return _Response("200 OK", b"ok\n", "text/plain; charset=utf-8")
    if path == EVENTS_PATH:
        return _events(settings, environ)
    if path == "/robots.txt":
        return _Response("200 OK", b"User-agent: *\nDisallow: /\n", "text/plain; charset=utf-8")
    if path.startswith("/smakom/") or path == "/favicon.ico":
        return _Response("404 Not Found", b"", "text/plain; charset=utf-8")
    if method not in ("GET", "HEAD", "POST"):
        return _Response("405 Method Not Allowed", b"", extra=(("Allow", "GET, HEAD, POST"),))
    body = b""
    if method == "POST":
        read = _read_body(environ)
        if read is None:
            return pages.message(
                "413 Content Too Large", "För stor förfrågan", "Avregistreringen sparades inte."
            )
        body = read
    subject = _subject(settings.secret, environ)
    if subject is None:
        return pages.message(
            "400 Bad Request",
            "Länken fungerar inte",
            "Länken är ofullständig eller ändrad. Använd avregistreringslänken i nyhetsbrevet "
            "som den är, eller svara på brevet och be att bli avregistrerad.",
        )
    if subject.proof:  # a colleague's press on a proof unsubscribes nobody
        return pages.message("200 OK", PROOF_LINK_TITLE, PROOF_LINK_TEXT)
    if method != "POST":
        return pages.confirm()
    action, source = _what(environ, body)
    _record(settings.database, subject, action, source)
    return pages.done(action)


def _subject(secret: bytes, environ: WSGIEnvironment) -> TokenSubject | None:
    tokens = parse_qs(environ.get("QUERY_STRING", "")).get("token", [])
    if len(tokens) != 1:
        return None
    try:
        return read_token(secret, tokens[0])
    except SmakomError:
        return None


def _read_body(environ: WSGIEnvironment) -> bytes | None:
    """The request body, or None when it is over the limit (it is then not read at all)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length > MAX_BODY_BYTES or length < 0:
        return None
    data: bytes = environ["wsgi.input"].read(length) if length else b""
    return data


def _what(environ: WSGIEnvironment, body: bytes) -> tuple[str, str]:
    """The action and its source: the page's buttons say which; anything else is one-click.

    RFC 8058 asks for `List-Unsubscribe=One-Click`, but any other POST to a genuine link is
    still the reader asking to leave, and an unsubscribe must never be lost.
    """
    content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return UNSUBSCRIBED, "one-click"
    fields = parse_qs(body.decode("latin-1"))
    button = fields.get("action", [""])[0]
    if button == "resubscribe":
        return RESUBSCRIBED, "web"
    if button == "unsubscribe":
        return UNSUBSCRIBED, "web"
    return UNSUBSCRIBED, "one-click"


def _events(settings: ServiceSettings, environ: WSGIEnvironment) -> _Response:
    """The events after `after=`, for `smakom sync`; 401 with nothing else without the key."""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _Response("405 Method Not Allowed", b"", extra=(("Allow", "GET"),))
    given = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, key = given.partition(" ")
    authorised = bool(settings.service_key) and scheme.lower() == "bearer"
    # Compared in constant time, and always, so the answer's timing tells nothing.
    matches = hmac.compare_digest(key.strip().encode(), settings.service_key.encode())
    if not (authorised and matches):
        return _Response(
            "401 Unauthorized", b"", "text/plain", (("WWW-Authenticate", 'Bearer realm="smakom"'),)
        )
    values = parse_qs(environ.get("QUERY_STRING", "")).get("after", ["0"])
    if len(values) != 1 or not values[0].isdigit() or len(values[0]) > 18:
        return _Response(
            "400 Bad Request", b'{"error": "after must be a cursor"}\n', "application/json"
        )
    after = int(values[0])
    with _transaction(settings.database) as db:
        service = db.execute("SELECT value FROM meta WHERE name = 'service'").fetchone()[0]
        rows = db.execute(
            "SELECT cursor, subscriber_id, address, action, source, at FROM events "
            "WHERE cursor > ? ORDER BY cursor LIMIT ?",
            (after, EVENTS_PER_PAGE + 1),
        ).fetchall()
        # From now on a repeat of these is recorded again: the office may resubscribe the
        # reader once it has them, and a later click must then count.
        served = rows[min(len(rows), EVENTS_PER_PAGE) - 1][0] if rows else 0
        db.execute(
            "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) WHERE name = 'delivered'",
            (served,),
        )
    more = len(rows) > EVENTS_PER_PAGE
    rows = rows[:EVENTS_PER_PAGE]
    events = [
        {"cursor": c, "id": i, "address": a, "action": ac, "source": s, "at": t}
        for c, i, a, ac, s, t in rows
    ]
    document = {
        "service": service,
        "events": events,
        "cursor": rows[-1][0] if rows else after,
        "more": more,
    }
    return _Response("200 OK", json.dumps(document).encode() + b"\n", "application/json")


def _record(database: Path, subject: TokenSubject, action: str, source: str) -> None:
    """Store the reader's request, in one transaction, before the 200 is sent.

    A repeat (the same action again, not yet fetched by `smakom sync`) adds nothing; a
    resubscribe by someone who never unsubscribed here neither.
    """
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with _transaction(database) as db:
        latest = db.execute(
            "SELECT cursor, action FROM events WHERE subscriber_id = ? "
            "ORDER BY cursor DESC LIMIT 1",
            (subject.subscriber_id,),
        ).fetchone()
        delivered = int(db.execute("SELECT value FROM meta WHERE name = 'delivered'").fetchone()[0])
        if latest is not None and latest[1] == action and latest[0] > delivered:
            return
        if latest is None and action == RESUBSCRIBED:
            return
        db.execute(
            "INSERT INTO events (subscriber_id, address, action, source, at) "
            "VALUES (?, ?, ?, ?, ?)",
            (subject.subscriber_id, subject.address, action, source, at),
        )


def _create_database(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('service', ?), ('delivered', '0')",
                (secrets.token_hex(8),),
            )
    except (sqlite3.Error, OSError) as exc:
        raise SmakomError(f"{path}: the service's database cannot be opened ({exc}).") from None


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        # FULL: a request that got its 200 survives a power cut, not only a crash.
        db.execute("PRAGMA synchronous=FULL")
        yield db


@contextmanager
def _transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """One write transaction; the lock is taken at the start, so readers never upgrade."""
    with _connect(path) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


class _Pages:
    """The Swedish pages, in the newsletter's colours, with no script and no outside resource."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.name = settings.name
        colours = [
            c if _COLOUR.fullmatch(c) else default
            for c, default in (
                (settings.primary_color, "#005a7a"),
                (settings.background_color, "#eef2f4"),
                (settings.text_color, "#2b2b2b"),
            )
        ]
        primary, background, text = colours
        self.style = (
            f"body{{margin:0;background:{background};color:{text};"
            "font:17px/1.5 Helvetica,Arial,sans-serif}"
            "main{max-width:34em;margin:3em auto;padding:2em;background:#fff;"
            f"border-top:6px solid {primary}}}"
            f"h1{{color:{primary};font-size:1.5em;margin-top:0}}"
            f"button{{background:{primary};color:#fff;border:0;padding:.7em 1.4em;"
            "font:inherit;border-radius:4px;cursor:pointer}"
            f"button.undo{{background:#fff;color:{primary};border:2px solid {primary}}}"
            ".name{font-size:.9em;letter-spacing:.05em;text-transform:uppercase}"
        )
        digest = base64.b64encode(hashlib.sha256(self.style.encode()).digest()).decode()
        self.policy = (
            f"default-src 'none'; style-src 'sha256-{digest}'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )

    def confirm(self) -> _Response:
        return self._page(
            "200 OK",
            "Vill du avregistrera dig?",
            "Tryck på knappen så får du inte fler nyhetsbrev till den här adressen.",
            self._button("unsubscribe", "Avregistrera mig", ""),
        )

    def done(self, action: str) -> _Response:
        if action == UNSUBSCRIBED:
            return self._page(
                "200 OK",
                "Du är avregistrerad",
                f"Du får inte fler utskick av {self.name}. Tryckte du fel kan du ångra det.",
                self._button("resubscribe", "Ångra", "undo"),
            )
        return self._page(
            "200 OK",
            "Du prenumererar igen",
            f"Välkommen tillbaka: du får {self.name} som förut.",
            self._button("unsubscribe", "Avregistrera mig", ""),
        )

    def message(self, status: str, title: str, text: str) -> _Response:
        return self._page(status, title, text, "")

    def _button(self, action: str, label: str, css: str) -> str:
        # No action attribute: the form posts to this very URL, token included, wherever
        # the service is mounted.
        return (
            f'<form method="post"><input type="hidden" name="action" value="{action}">'
            f'<button type="submit" class="{css}">{html.escape(label)}</button></form>'
        )

    def _page(self, status: str, title: str, text: str, form: str) -> _Response:
        page = (
            '<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex">'
            f"<title>{html.escape(title)} – {html.escape(self.name)}</title>"
            f"<style>{self.style}</style></head><body><main>"
            f'<p class="name">{html.escape(self.name)}</p>'
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{form}"
            "</main></body></html>"
        )
        return _Response(status, page.encode("utf-8"))
