"""`smakom sync`: the one-click service's events brought home to `unsubscribed.csv`.

Split in two so a send can look before it asks: `fetch_events` only reads (the network and
the local lists, to turn opaque link ids back into addresses), `apply_events` writes the
suppression list and then the sync state beside it. The state (`unsubscribed.sync.json`)
holds the service's cursor and any event whose id matched no known address yet: such an
event is kept and tried again at every sync (the address may come back with a re-imported
list), never dropped. A resubscribe counts only when the service marks it `genuine` (made
with the one-time undo token of the page right after the unsubscribe); any other is left out.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from smakom_cli.atomic import PRIVATE, replace_file
from smakom_cli.audience.subscribers import Subscriber, iter_subscribers
from smakom_cli.audience.suppression import SuppressionList
from smakom_cli.audience.unsubscribe_links import index_by_id
from smakom_cli.config import Config
from smakom_cli.delivery.journal import known_keys
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import N_, _
from smakom_cli.returns.service import EVENTS_PATH, HEALTH_PATH, RESUBSCRIBED, UNSUBSCRIBED
from smakom_cli.signin.resolver import Resolver

T = TypeVar("T")

STATE_NAME = "unsubscribed.sync.json"
_MAX_PAGES = 10_000
_SOURCES = ("one-click", "web")
_REASONS = {
    ("one-click", UNSUBSCRIBED): N_("one-click unsubscribe in the mail program"),
    ("web", UNSUBSCRIBED): N_("the unsubscribe page"),
    ("web", RESUBSCRIBED): N_("undo on the unsubscribe page"),
    ("one-click", RESUBSCRIBED): N_("undo on the unsubscribe page"),
}


@dataclass(frozen=True)
class ServiceUrls:
    """Where the service answers: derived from `[unsubscribe] url`, on its origin and prefix."""

    page: str
    events: str
    health: str


@dataclass(frozen=True)
class SyncEvent:
    """One reader's request; `address` is empty while its opaque id matches nobody known."""

    cursor: int
    subscriber_id: str
    address: str
    action: str
    source: str
    at: datetime
    genuine: bool = False
    """Made on the service's page by the reader right then (an undo needs its token)."""


@dataclass(frozen=True)
class SyncBatch:
    """What `fetch_events` found: every event to apply, oldest first, and the new cursor."""

    service: str
    cursor: int
    events: tuple[SyncEvent, ...]
    refused_undos: int = 0
    """Resubscribes the service did not mark genuine (from a service before undo tokens)."""

    @property
    def unresolved(self) -> tuple[SyncEvent, ...]:
        return tuple(event for event in self.events if not event.address)


@dataclass(frozen=True)
class SyncResult:
    """What `apply_events` changed in unsubscribed.csv."""

    unsubscribed: tuple[str, ...]
    resubscribed: tuple[str, ...]
    unchanged: int
    overruled: tuple[str, ...]
    """Undos on the web left out: the suppression list has a newer event for the address."""
    unresolved: int
    cursor: int
    service: str  # the events' address, to say where they came from
    refused_undos: int = 0


def service_urls(config: Config) -> ServiceUrls | None:
    """The service's addresses, or None when no `[unsubscribe] url` is configured.

    `https://x.se/nyhetsbrev/avregistrera` has its events at
    `https://x.se/nyhetsbrev/smakom/events`: the path prefix is kept, so a service mounted
    under a folder of a web hotel works. `[unsubscribe] service = "http://10.0.0.5:8080"`
    puts them at `http://10.0.0.5:8080/smakom/events`, the links staying on `url`.
    """
    url = config.unsubscribe.url
    if not url:
        return None
    # `[unsubscribe] service` is the service's own base address, where it differs.
    service = config.unsubscribe.service
    parts = urlsplit(service or url)
    prefix = parts.path.rstrip("/") if service else parts.path.rpartition("/")[0]

    def at(path: str) -> str:
        return urlunsplit((parts.scheme, parts.netloc, prefix + path, "", ""))

    return ServiceUrls(page=url, events=at(EVENTS_PATH), health=at(HEALTH_PATH))


def state_path(config: Config) -> Path:
    return config.suppression_path.with_name(STATE_NAME)


def last_sync(config: Config) -> datetime | None:
    """When `smakom sync` last brought events home (UTC), or None if it never did.

    For a preview or dry run, which use no network, to warn that a real send syncs first.
    """
    try:
        stamp = state_path(config).stat().st_mtime
    except FileNotFoundError:
        return None
    return datetime.fromtimestamp(stamp, UTC)


def sync(signin: Resolver, *, lists: Sequence[Path] = ()) -> SyncResult:
    """`smakom sync`: fetch the events and write them, with the list's real link key.

    Never with a stand-in key: the new links would match nobody, and the list be blamed.
    """
    config = signin.config
    if service_urls(config) is None:
        raise SmakomError(_no_service(config))
    key = signin.sync_key()
    return apply_events(config, fetch_events(config, key, signin.required_link_key(), lists=lists))


def _no_service(config: Config) -> str:
    return _(
        "{name}: [unsubscribe] has no url, so there is no one-click service to sync with."
    ).format(name=config.path.name)


def fetch_events(
    config: Config,
    service_key: str,
    secret: bytes | None,
    *,
    lists: Sequence[Path] = (),
    timeout: float = 15.0,
) -> SyncBatch:
    """The events since the last sync, with addresses found; reads only, writes nothing.

    `lists` are subscriber lists besides the configured one whose addresses may be behind a
    link (a send's --subscribers); without `secret` (no key on this computer) only events
    that carry their address are matched. Raises SmakomError, one line, when the service cannot be
    reached or refuses the key.
    """
    urls = service_urls(config)
    if urls is None:
        raise SmakomError(_no_service(config))
    saved = _read_state(state_path(config))
    document = _get(urls.events, saved.cursor, service_key, timeout)
    if document["service"] != saved.service and saved.service:
        # A new database on the server starts counting again: read all of it.
        saved = replace(saved, cursor=0)
        document = _get(urls.events, 0, service_key, timeout)
    service = document["service"]
    events: list[SyncEvent] = list(saved.unresolved)
    cursor = saved.cursor
    for _page in range(_MAX_PAGES):
        new = [_event(item, urls.events) for item in document["events"]]
        for event in new:
            if event.cursor <= cursor:
                raise SmakomError(
                    _("{events} answered events out of order; try again.").format(
                        events=urls.events
                    )
                )
            cursor = event.cursor
        events += new
        if not document["more"]:
            break
        document = _get(urls.events, cursor, service_key, timeout)
        if document["service"] != service:
            raise SmakomError(
                _("{events} changed its database during the sync; try again.").format(
                    events=urls.events
                )
            )
    # Only an undo the reader made on the page, right after the unsubscribe, resubscribes.
    kept = [event for event in events if event.action != RESUBSCRIBED or event.genuine]
    return SyncBatch(
        service=service,
        cursor=cursor,
        events=_resolve(config, secret, kept, lists),
        refused_undos=len(events) - len(kept),
    )


def pending_unsubscribes(batch: SyncBatch) -> frozenset[str]:
    """The addresses whose latest event in the batch is an unsubscribe: leave them out."""
    latest: dict[str, str] = {}
    for event in batch.events:
        if event.address:
            latest[event.address] = event.action
    return frozenset(address for address, action in latest.items() if action == UNSUBSCRIBED)


def apply_events(config: Config, batch: SyncBatch) -> SyncResult:
    """Write the batch into unsubscribed.csv (idempotent), then the sync state beside it.

    The state is written last: a crash in between only means the same events are applied
    again next time, which changes nothing.
    """
    suppression = SuppressionList(config.suppression_path)
    resolved = [event for event in batch.events if event.address]
    times = suppression.latest_times() if any(e.action == RESUBSCRIBED for e in resolved) else {}

    def overruled(event: SyncEvent) -> bool:
        # An undo on the web older than what the office recorded since (an unsubscribe
        # asked by phone, a bounce) must not undo that.
        newer = times.get(event.address)
        return event.action == RESUBSCRIBED and newer is not None and newer > event.at

    changed: dict[str, list[str]] = {UNSUBSCRIBED: [], RESUBSCRIBED: []}
    unchanged = 0
    for run in _runs(event for event in resolved if not overruled(event)):
        first = run[0]
        addresses = [event.address for event in run]
        reason = _(_REASONS[first.source, first.action])
        if first.action == UNSUBSCRIBED:
            changes = suppression.unsubscribe(
                addresses, source=first.source, reason=reason, when=first.at
            )
        else:  # an undo comes after the click it undoes, even within the same second
            changes = suppression.resubscribe(
                addresses, source=first.source, reason=reason, when=first.at, follows_ties=True
            )
        unchanged += sum(change.already for change in changes)
        changed[first.action] += [change.email for change in changes if not change.already]
    unresolved = batch.unresolved
    _write_state(state_path(config), _State(batch.service, batch.cursor, unresolved))
    return SyncResult(
        unsubscribed=tuple(changed[UNSUBSCRIBED]),
        resubscribed=tuple(changed[RESUBSCRIBED]),
        unchanged=unchanged,
        overruled=tuple(event.address for event in resolved if overruled(event)),
        unresolved=len(unresolved),
        cursor=batch.cursor,
        service=urls.events if (urls := service_urls(config)) else "",
        refused_undos=batch.refused_undos,
    )


def known_addresses(config: Config, lists: Sequence[Path] = ()) -> Iterator[str]:
    """Every address a link can have been made for: the lists, unsubscribed.csv, the journals."""
    for path in (config.subscribers_path, *lists):
        if path.exists():
            for item in iter_subscribers(path):
                if isinstance(item, Subscriber):
                    yield item.key
    yield from SuppressionList(config.suppression_path).suppressed()
    yield from known_keys(config.journal_dir)


def _resolve(
    config: Config, secret: bytes | None, events: list[SyncEvent], lists: Sequence[Path]
) -> tuple[SyncEvent, ...]:
    """Fill in the address of each event from a new link; the lists are read only if needed."""
    if secret is None or all(event.address for event in events):
        return tuple(events)
    index = index_by_id(secret, known_addresses(config, lists))
    return tuple(
        event if event.address else replace(event, address=index.get(event.subscriber_id, ""))
        for event in events
    )


def _runs(events: Iterable[SyncEvent]) -> Iterator[list[SyncEvent]]:
    """Consecutive events with the same action, source and time: one write of the file each."""
    run: list[SyncEvent] = []
    for event in events:
        if run and (event.action, event.source, event.at) != (
            run[0].action,
            run[0].source,
            run[0].at,
        ):
            yield run
            run = []
        run.append(event)
    if run:
        yield run


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The sync key must go to the configured service only, never to where it redirects."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _get(url: str, after: int, service_key: str, timeout: float) -> dict[str, Any]:
    """One page of events, checked for shape; every failure is one sentence."""
    from smakom_cli import __version__

    request = urllib.request.Request(  # noqa: S310 (the scheme is checked by config.py)
        f"{url}?after={after}",
        headers={
            "Authorization": f"Bearer {service_key}",
            "Accept": "application/json",
            "User-Agent": f"smakom/{__version__}",
        },
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(50_000_000)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise SmakomError(
                _(
                    "the one-click service at {url} refused the sync key ({code}): run "
                    "`smakom login --service-key` with the key the service runs with "
                    "(SMAKOM_SERVICE_KEY on the server)."
                ).format(url=url, code=exc.code)
            ) from None
        raise SmakomError(
            _(
                "the one-click service at {url} answered {code} {reason}; is `smakom "
                "serve` running behind [unsubscribe] url?"
            ).format(url=url, code=exc.code, reason=exc.reason)
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SmakomError(
            _(
                "cannot reach the one-click service at {url} ({reason}); check the "
                "connection and that the service is running."
            ).format(url=url, reason=reason)
        ) from None
    try:
        document = json.loads(body)
        if not (
            isinstance(document, dict)
            and isinstance(document.get("service"), str)
            and isinstance(document.get("events"), list)
            and isinstance(document.get("more"), bool)
        ):
            raise ValueError(_("not an event list"))
    except ValueError:
        raise SmakomError(
            _(
                "{url} did not answer with the one-click service's event list; is "
                "[unsubscribe] url the address of `smakom serve`?"
            ).format(url=url)
        ) from None
    return document


def _event(item: object, url: str) -> SyncEvent:
    try:
        if not isinstance(item, dict):
            raise TypeError
        event = SyncEvent(
            cursor=_typed(item["cursor"], int),
            subscriber_id=_typed(item["id"], str),
            address=_typed(item["address"], str).lower(),
            action=_typed(item["action"], str),
            source=_typed(item["source"], str),
            at=datetime.fromisoformat(_typed(item["at"], str)),
            genuine=_typed(item.get("genuine", False), bool, boolean=True),
        )
        if event.action not in (UNSUBSCRIBED, RESUBSCRIBED) or event.source not in _SOURCES:
            raise ValueError
        if event.at.tzinfo is None:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise SmakomError(
            _("{url} answered an event smakom cannot read: {item!r}.").format(url=url, item=item)
        ) from None
    return event


def _typed(value: object, kind: type[T], *, boolean: bool = False) -> T:
    if not isinstance(value, kind) or isinstance(value, bool) != boolean:
        raise TypeError
    return value


@dataclass(frozen=True)
class _State:
    service: str = ""
    cursor: int = 0
    unresolved: tuple[SyncEvent, ...] = ()


def _read_state(path: Path) -> _State:
    """The last sync's state; a damaged file is an error (guessing could skip events)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _State()
    except (OSError, UnicodeDecodeError) as exc:
        raise SmakomError(_("{path} cannot be read ({exc}).").format(path=path, exc=exc)) from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) != {"service", "cursor", "unresolved"}:
            raise ValueError
        unresolved = tuple(_event(item, str(path)) for item in _typed(data["unresolved"], list))
        state = _State(_typed(data["service"], str), _typed(data["cursor"], int), unresolved)
        if state.cursor < 0:
            raise ValueError
    except (ValueError, TypeError, SmakomError):
        raise SmakomError(
            _(
                "{path} is damaged. Delete it and run `smakom sync` again: every event "
                "is then fetched again, which is harmless."
            ).format(path=path)
        ) from None
    return state


def _write_state(path: Path, state: _State) -> None:
    data = {
        "service": state.service,
        "cursor": state.cursor,
        "unresolved": [
            {
                "cursor": e.cursor,
                "id": e.subscriber_id,
                "address": "",
                "action": e.action,
                "source": e.source,
                "at": e.at.isoformat(),
                "genuine": e.genuine,
            }
            for e in state.unresolved
        ],
    }
    text = json.dumps(data, indent=1) + "\n"
    replace_file(path, text.encode("utf-8"), new_mode=PRIVATE)
