"""The one-click unsubscribe service (RFC 8058): the web side of `[unsubscribe] url`.

A WSGI application, so it runs wherever a small organisation can host Python (Passenger on
a web hotel, waitress or gunicorn on a server; `smakom serve` runs it with waitress, see
`returns/server.py`). Its state is one SQLite database of events; it holds no subscriber
list and no address, only the opaque ids the links carry.

- `POST <page>?token=…` with `List-Unsubscribe=One-Click` (Gmail's and Yahoo's one-click,
  form-encoded or multipart) records an unsubscribe and answers 200; no cookie, login or
  CSRF token (RFC 8058 §3). The page's button posts `action=unsubscribe` instead and is
  redirected to a page with "Ångra"; any other body is refused with 400 and records nothing.
- `GET <page>?token=…` never changes anything (link scanners fetch every link): it shows a
  page with one button that POSTs.
- "Ångra" posts a one-time undo token that only the page after the unsubscribe showed,
  bound to that event and valid for `UNDO_MINUTES`: the mail's link alone never resubscribes.
- A proof's link (`smakom send --to`) only shows a page saying so, and records nothing.
- `GET <base>/smakom/events?after=CURSOR` with `Authorization: Bearer KEY`: the events after
  the cursor, as JSON, for `smakom sync`. `GET <base>/smakom/health`: "ok".
"""

from __future__ import annotations

import base64
import email.message
import email.parser
import email.policy
import hashlib
import hmac
import html
import json
import logging
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlencode

from smakom_cli.audience.unsubscribe_links import (
    PROOF_LINK_TEXT,
    PROOF_LINK_TITLE,
    TokenSubject,
    read_token,
)
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.signin.credentials import SECRET_VARIABLE, key_problem

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
UNDO_MINUTES = 30
"""How long "Ångra" works: long enough to notice a slip of the finger on the page still open,
short enough that a link in browser history or a forwarded screenshot is worth nothing."""
RETRY_AFTER_SECONDS = 120
LOGGER = "smakom.service"
_COLOUR = re.compile(r"#[0-9A-Fa-f]{3,8}|[A-Za-z]{3,20}")
# RFC 2046 §5.1.1: what a multipart boundary may be made of.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]")
_ONE_CLICK = {"List-Unsubscribe": ["One-Click"]}
_BUTTON = {"action": ["unsubscribe"]}
_UNDO = ["resubscribe"]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('unsubscribed', 'resubscribed')),
    source TEXT NOT NULL CHECK (source IN ('one-click', 'web')),
    at TEXT NOT NULL,
    genuine INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_subscriber ON events (subscriber_id, cursor);
CREATE TABLE IF NOT EXISTS undo (
    digest TEXT PRIMARY KEY,
    event INTEGER NOT NULL,
    subscriber_id TEXT NOT NULL,
    expires INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
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
    contact: str = ""
    """Who a reader can ask (name, e-mail, phone), shown on every page."""


def settings_for(
    database: Path, secret: bytes, service_key: str, config: Config | None = None
) -> ServiceSettings:
    """Settings with the newsletter's name, colours and contact from smakom.toml, if any."""
    if config is None:
        return ServiceSettings(database, secret, service_key)
    brand = config.brand
    contact = config.contact
    return ServiceSettings(
        database,
        secret,
        service_key,
        name=config.newsletter.name,
        primary_color=brand.primary_color,
        background_color=brand.background_color,
        text_color=brand.text_color,
        contact=", ".join(part for part in (contact.name, contact.email, contact.phone) if part),
    )


@dataclass(frozen=True)
class _Response:
    status: str
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    extra: tuple[tuple[str, str], ...] = ()


def make_app(settings: ServiceSettings, log: logging.Logger | None = None) -> WSGIApplication:
    """The WSGI application; creates the database (WAL mode) when it does not exist yet.

    `log` gets one line per request (time, method, path without the query, status,
    duration) and one per error with its cause; never a token, an address or a key.
    """
    _check_keys(settings)
    _create_database(settings.database)
    pages = _Pages(settings)
    logger = log or logging.getLogger(LOGGER)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        method = re.sub(r"[^A-Z]", "?", str(environ.get("REQUEST_METHOD", ""))[:16])
        path = _loggable(environ.get("PATH_INFO", ""))
        try:
            response = _route(settings, pages, environ)
        except sqlite3.Error as exc:
            logger.error("%s %s: the database cannot be used (%s)", method, path, exc)
            # Never a 200 for what was not stored: the provider may try again later.
            response = pages.unavailable()
        except Exception as exc:  # one bad request must not stop the service
            logger.error("%s %s: %s", method, path, type(exc).__name__)
            response = pages.message(
                "500 Internal Server Error",
                "Något gick fel",
                "Avregistreringen sparades inte. Försök igen om en stund.",
            )
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
        milliseconds = (time.monotonic() - started) * 1000
        logger.info("%s %s %s %.1f ms", method, path, response.status[:3], milliseconds)
        return [b"" if method == "HEAD" else response.body]

    return app


def _check_keys(settings: ServiceSettings) -> None:
    """Refuse keys that would make links or the event list guessable."""
    if len(settings.secret) < MIN_KEY_LENGTH:
        raise SmakomError(
            _(
                "the one-click service needs the link-signing key (at least "
                "{min_key_length} characters), the one the office's unsubscribe links "
                "are signed with."
            ).format(min_key_length=MIN_KEY_LENGTH)
        )
    secret = settings.secret.decode("utf-8", "replace")
    if key_problem(secret):
        raise SmakomError(
            _(
                "the link-signing key ({variable}) is too regular to be random: copy the one "
                "smakom made in the office's keyring (`keyring get smakom "
                "unsubscribe-secret:<list_id>`)."
            ).format(variable=SECRET_VARIABLE)
        )
    problem = key_problem(settings.service_key)
    if problem:
        raise SmakomError(_("the sync key {problem}").format(problem=problem))


def _loggable(path: object) -> str:
    """The path as one harmless line: no control character, no query, bounded length."""
    text = quote(str(path), safe="/-._~!$&'()*+,;=:@%") or "/"
    return text if len(text) <= 120 else text[:119] + "…"


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
    query = parse_qs(environ.get("QUERY_STRING", ""))
    body = b""
    if method == "POST":
        read = _read_body(environ)
        if read is None:
            return pages.message(
                "413 Content Too Large", "För stor förfrågan", "Avregistreringen sparades inte."
            )
        body = read
    subject = _subject(settings.secret, query)
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
        undo = query.get("undo", [])
        if len(undo) == 1:
            return pages.after(_undo_state(settings.database, subject, undo[0]), undo[0])
        return pages.confirm()
    return _post(settings, pages, subject, query["token"][0], _form(environ, body))


def _post(
    settings: ServiceSettings,
    pages: _Pages,
    subject: TokenSubject,
    token: str,
    fields: dict[str, list[str]] | None,
) -> _Response:
    """The three requests a POST may be; anything else records nothing."""
    if fields == _ONE_CLICK:
        _unsubscribe(settings.database, subject, "one-click")
        return pages.unsubscribed()
    if fields == _BUTTON:
        undo = _unsubscribe(settings.database, subject, "web")
        return _see(token, undo)
    if fields is not None and set(fields) == {"action", "undo"} and fields["action"] == _UNDO:
        undos = fields["undo"]
        if len(undos) == 1 and _undo(settings.database, subject, undos[0]):
            return _see(token, undos[0])
        return pages.after("gone", "")
    return pages.unreadable()


def _see(token: str, undo: str) -> _Response:
    """POST-redirect-GET: the page after a button is a GET, so Back and reload never post.

    A relative address ("?token=…"), so it works wherever the service is mounted.
    """
    location = "?" + urlencode({"token": token, "undo": undo})
    return _Response("303 See Other", b"", "text/plain; charset=utf-8", (("Location", location),))


def _subject(secret: bytes, query: dict[str, list[str]]) -> TokenSubject | None:
    tokens = query.get("token", [])
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


def _form(environ: WSGIEnvironment, body: bytes) -> dict[str, list[str]] | None:
    """The fields of a form-encoded or multipart body; None for any other or a broken one.

    Only these two shapes: RFC 8058 §3.1 allows no other, and it is what Gmail, Yahoo and
    Outlook.com send. An empty body is refused too (RFC 8058 requires the field), and gets
    a page with the button.
    """
    header = email.message.Message()
    header["Content-Type"] = str(environ.get("CONTENT_TYPE", ""))
    kind = header.get_content_type() if environ.get("CONTENT_TYPE") else ""
    fields: dict[str, list[str]] = {}
    try:
        if kind == "application/x-www-form-urlencoded":
            text = body.decode("ascii")
            fields = parse_qs(text, keep_blank_values=True, strict_parsing=True, max_num_fields=8)
        elif kind == "multipart/form-data":
            boundary = header.get_param("boundary")
            if not isinstance(boundary, str) or not _BOUNDARY.fullmatch(boundary):
                return None
            fields = _multipart(boundary, body)
        else:
            return None
    except ValueError:
        return None
    # A line break after the value (a hand-made request) is no different request.
    return {name: [value.strip() for value in values] for name, values in fields.items()}


def _multipart(boundary: str, body: bytes) -> dict[str, list[str]]:
    """multipart/form-data fields (RFC 7578): plain text parts only, no files."""
    head = f'Content-Type: multipart/form-data; boundary="{boundary}"\r\n\r\n'.encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts = list(message.iter_parts()) if message.is_multipart() else []
    if not parts or message.defects or len(parts) > 8:
        raise ValueError("not a form")
    fields: dict[str, list[str]] = {}
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if (
            part.get_content_disposition() != "form-data"
            or not isinstance(name, str)
            or part.get_filename() is not None
            or part.defects
            or not isinstance(payload, bytes)
        ):
            raise ValueError("not a form field")
        fields.setdefault(name, []).append(payload.decode("utf-8"))
    return fields


def _events(settings: ServiceSettings, environ: WSGIEnvironment) -> _Response:
    """The events after `after=`, for `smakom sync`; 401 with nothing else without the key.

    Each event says `genuine`: an undo made from the page right after the unsubscribe, with
    its one-time token (events from before undo tokens are not); `address` is always empty.
    """
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _Response("405 Method Not Allowed", b"", extra=(("Allow", "GET"),))
    given = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _space, key = given.partition(" ")
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
            "SELECT cursor, subscriber_id, action, source, at, genuine FROM events "
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
        {
            "cursor": c,
            "id": i,
            "address": "",
            "action": ac,
            "source": s,
            "at": t,
            "genuine": bool(g),
        }
        for c, i, ac, s, t, g in rows
    ]
    document = {
        "service": service,
        "events": events,
        "cursor": rows[-1][0] if rows else after,
        "more": more,
    }
    return _Response("200 OK", json.dumps(document).encode() + b"\n", "application/json")


def _unsubscribe(database: Path, subject: TokenSubject, source: str) -> str:
    """Record an unsubscribe before the answer is sent; from the page, also its undo token.

    A repeat (not yet fetched by `smakom sync`) adds no event; the page's undo token is then
    bound to the unsubscribe that stands.
    """
    with _transaction(database) as db:
        event = _record(db, subject.subscriber_id, UNSUBSCRIBED, source)
        if source != "web":
            return ""
        undo = secrets.token_urlsafe(18)
        now = int(time.time())
        db.execute("DELETE FROM undo WHERE expires < ?", (now,))
        db.execute(
            "INSERT INTO undo (digest, event, subscriber_id, expires) VALUES (?, ?, ?, ?)",
            (_digest(undo), event, subject.subscriber_id, now + UNDO_MINUTES * 60),
        )
        return undo


def _undo(database: Path, subject: TokenSubject, undo: str) -> bool:
    """Resubscribe with the page's one-time token, if it is this reader's, unused and fresh,
    and the unsubscribe it was made for is still the reader's latest request here."""
    with _transaction(database) as db:
        if _undo_row(db, subject, undo) != "open":
            return False
        latest = db.execute(
            "SELECT action FROM events WHERE subscriber_id = ? ORDER BY cursor DESC LIMIT 1",
            (subject.subscriber_id,),
        ).fetchone()
        if latest is None or latest[0] != UNSUBSCRIBED:
            return False
        db.execute("UPDATE undo SET used = 1 WHERE digest = ?", (_digest(undo),))
        _record(db, subject.subscriber_id, RESUBSCRIBED, "web")
        return True


def _undo_state(database: Path, subject: TokenSubject, undo: str) -> str:
    with _connect(database) as db:
        return _undo_row(db, subject, undo)


def _undo_row(db: sqlite3.Connection, subject: TokenSubject, undo: str) -> str:
    """Whether the token may undo ("open"), has ("used", within the window), or is "gone"."""
    row = db.execute(
        "SELECT subscriber_id, expires, used FROM undo WHERE digest = ?", (_digest(undo),)
    ).fetchone()
    if row is None or row[0] != subject.subscriber_id or row[1] <= time.time():
        return "gone"
    return "used" if row[2] else "open"


def _digest(undo: str) -> str:
    # Only a digest is stored: a copy of the database cannot be used to undo.
    return hashlib.sha256(undo.encode("utf-8", "replace")).hexdigest()


def _record(db: sqlite3.Connection, subscriber: str, action: str, source: str) -> int:
    """Add the reader's request, or find the same one not yet fetched; returns its cursor."""
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    latest = db.execute(
        "SELECT cursor, action FROM events WHERE subscriber_id = ? ORDER BY cursor DESC LIMIT 1",
        (subscriber,),
    ).fetchone()
    delivered = int(db.execute("SELECT value FROM meta WHERE name = 'delivered'").fetchone()[0])
    if latest is not None and latest[1] == action and latest[0] > delivered:
        return int(latest[0])
    inserted = db.execute(
        "INSERT INTO events (subscriber_id, action, source, at, genuine) VALUES (?, ?, ?, ?, 1)",
        (subscriber, action, source, at),
    )
    return int(inserted.lastrowid or 0)


def _create_database(path: Path) -> None:
    """The database, only its owner's (folder 0700, file 0600, where smakom makes them)."""
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600))
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('service', ?), ('delivered', '0')",
                (secrets.token_hex(8),),
            )
            _upgrade(db)
    except (sqlite3.Error, OSError) as exc:
        raise SmakomError(
            _("{path}: the service's database cannot be opened ({exc}).").format(path=path, exc=exc)
        ) from None


def _upgrade(db: sqlite3.Connection) -> None:
    """A database from before: forget the addresses old links stored, and mark its events as
    made without undo tokens (its undos are then never applied)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    if "genuine" not in columns:
        db.execute("ALTER TABLE events ADD COLUMN genuine INTEGER NOT NULL DEFAULT 0")
    if "address" in columns and db.execute("SELECT 1 FROM events WHERE address <> ''").fetchone():
        # Overwritten on disk, not only marked free; the id (a keyed hash) stays.
        db.execute("PRAGMA secure_delete=ON")
        db.execute("UPDATE events SET address = '' WHERE address <> ''")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")


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
        self.contact = settings.contact
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
            ".contact{font-size:.85em;margin-bottom:0}"
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
            f"Tryck på knappen så får du inte fler utskick av {self.name} till den här adressen.",
            self._unsubscribe_button(),
        )

    def unsubscribed(self) -> _Response:
        """After a mail program's one-click: no undo (the reader did not see this page)."""
        return self._page(
            "200 OK", "Du är avregistrerad", f"Du får inte fler utskick av {self.name}.", ""
        )

    def after(self, state: str, undo: str) -> _Response:
        """The page after the button, reached by the redirect: with "Ångra" while it works."""
        if state == "open":
            return self._page(
                "200 OK",
                "Du är avregistrerad",
                f"Du får inte fler utskick av {self.name}. Tryckte du fel kan du ångra det "
                f"här, inom {UNDO_MINUTES} minuter.",
                '<form method="post"><input type="hidden" name="action" value="resubscribe">'
                f'<input type="hidden" name="undo" value="{html.escape(undo)}">'
                '<button type="submit" class="undo">Ångra</button></form>',
            )
        if state == "used":
            return self._page(
                "200 OK",
                "Du prenumererar igen",
                f"Välkommen tillbaka: du får {self.name} som förut.",
                self._unsubscribe_button(),
            )
        again = (
            f"kontakta {self.contact}" if self.contact else "svara på ett av nyhetsbreven"
        ) + " och be att få det igen."
        return self._page(
            "410 Gone",
            "Det går inte längre att ångra",
            f"Ångra fungerar en gång, i {UNDO_MINUTES} minuter, på sidan som kom direkt efter "
            f"avregistreringen. Vill du ha {self.name} igen, {again}",
            "",
        )

    def unreadable(self) -> _Response:
        """A POST that is neither a one-click nor the page's button: nothing is recorded."""
        return self._page(
            "400 Bad Request",
            "Förfrågan kunde inte läsas",
            "Ingenting har sparats. Vill du avregistrera dig, tryck på knappen.",
            self._unsubscribe_button(),
        )

    def unavailable(self) -> _Response:
        page = self.message(
            "503 Service Unavailable",
            "Avregistreringen sparades inte",
            "Tjänsten kan inte spara något just nu. Försök igen om en stund.",
        )
        return _Response(page.status, page.body, extra=(("Retry-After", str(RETRY_AFTER_SECONDS)),))

    def message(self, status: str, title: str, text: str) -> _Response:
        return self._page(status, title, text, "")

    def _unsubscribe_button(self) -> str:
        # No action attribute: the form posts to this very URL, token included, wherever
        # the service is mounted.
        return (
            '<form method="post"><input type="hidden" name="action" value="unsubscribe">'
            '<button type="submit">Avregistrera mig</button></form>'
        )

    def _page(self, status: str, title: str, text: str, form: str) -> _Response:
        contact = (
            f'<p class="contact">Frågor? Kontakta {html.escape(self.contact)}.</p>'
            if self.contact
            else ""
        )
        page = (
            '<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex">'
            f"<title>{html.escape(title)} – {html.escape(self.name)}</title>"
            f"<style>{self.style}</style></head><body><main>"
            f'<p class="name">{html.escape(self.name)}</p>'
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{form}{contact}"
            "</main></body></html>"
        )
        return _Response(status, page.encode("utf-8"))
