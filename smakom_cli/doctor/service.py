"""The one-click unsubscribe service: it answers over https, takes the sync key, and this
computer holds the key its links are signed with."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

from smakom_cli.config import Config
from smakom_cli.doctor.findings import Finding, shown
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _


def check_service(
    config: Config,
    link_key: Callable[[], bytes | None],
    sync_key: Callable[[], str],
    timeout: float,
) -> list[Finding]:
    """Three lines: health, the sync key, the link-signing key."""
    from smakom_cli.returns.sync import fetch_events, service_urls

    urls = service_urls(config)
    if urls is None:
        return [
            Finding(
                "problem",
                _("one-click service"),
                _(
                    "no [unsubscribe] url: Gmail and Yahoo require one-click unsubscribe of bulk "
                    "senders"
                ),
                _("Run `smakom serve` on a web server and set [unsubscribe] url to its page."),
            )
        ]
    health = _health(urls.health, timeout)
    if health.status == "ok" and not urls.page.startswith("https://"):
        health = Finding(
            "problem",
            health.what,
            _("answers, but readers reach it at {page}, plain http").format(page=urls.page),
            _("Serve [unsubscribe] url over https: providers need it for one-click (RFC 8058)."),
        )
    try:
        key = link_key()
    except SmakomError as exc:
        key, missing = None, str(exc)
    else:
        missing = "" if key else _("no key to sign the unsubscribe links has been made yet")
    if missing:
        signing = Finding(
            "problem",
            _("link-signing key"),
            missing,
            _(
                "Run `smakom login`, which makes it, and give the service the same key "
                "(SMAKOM_UNSUBSCRIBE_SECRET)."
            ),
        )
    else:
        signing = Finding(
            "ok",
            _("link-signing key"),
            _("this computer holds the key of {list_id}").format(list_id=config.list_id),
        )
    what = _("sync key ({events})").format(events=urls.events)
    if health.status != "ok":
        syncing = Finding("warning", what, _("not tried: the service does not answer"))
    else:
        try:
            fetch_events(config, sync_key(), key or bytes(32), timeout=timeout)
        except SmakomError as exc:
            syncing = Finding("problem", what, shown(str(exc), 400))
        else:
            syncing = Finding(
                "ok", what, _("the service accepted the sync key (nothing was changed)")
            )
    return [health, syncing, signing]


def _health(url: str, timeout: float) -> Finding:
    what = _("one-click service ({url})").format(url=url)
    todo = _("Start `smakom serve` behind [unsubscribe] url (see docs/service.md).")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (config.py checks the scheme)
            answered = response.read(100).strip() == b"ok"
    except urllib.error.HTTPError as exc:
        return Finding(
            "problem",
            what,
            _("answers {code} {value}").format(code=exc.code, value=shown(str(exc.reason), 60)),
            todo,
        )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Finding(
            "problem",
            what,
            _("answers nothing ({value})").format(value=shown(str(reason), 100)),
            todo,
        )
    if not answered:
        return Finding("problem", what, _("answers, but not as `smakom serve` does"), todo)
    return Finding("ok", what, _("answers as `smakom serve` does"))
