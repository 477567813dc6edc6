"""`smakom serve`: the one-click service on waitress, sized so that abuse cannot lock it out.

Waitress reads every request whole in one event loop before a worker thread sees it, so a
connection that is idle or trickles its body costs one open file and no thread. What locks a
server out is its connection limit (waitress's default is 100) and how long a silent
connection may keep its place. Here the limit is as high as the open-file limit allows (the
soft limit is raised towards the hard one, as Go and nginx do), silent connections are
dropped after `idle_timeout` seconds, and poll() is used so the limit is not select()'s 1,024.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.returns.service import LOGGER, MAX_BODY_BYTES

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

CONNECTIONS = 1000
IDLE_TIMEOUT = 15
THREADS = 8
# Files the service holds besides its connections: the listening socket, waitress's wake-up
# pipe, the log, and the database, its WAL and shared memory in every worker thread.
_RESERVED_FILES = 16
_FILES_PER_THREAD = 3
# Python's select() on Windows takes at most 512 sockets, and poll() does not exist there.
_WINDOWS_SOCKETS = 500


@dataclass(frozen=True)
class Capacity:
    """What the server will hold, and why it is less than asked for (empty when it is not)."""

    connections: int
    idle_timeout: int
    threads: int
    limited_by: str = ""


class Server(Protocol):
    def run(self) -> None: ...

    def close(self) -> None: ...


def capacity(
    connections: int,
    idle_timeout: int,
    threads: int,
    open_files: int | None,
    *,
    windows: bool = False,
) -> Capacity:
    """The connection limit that fits in `open_files` (None: no limit known)."""
    allowed = connections
    limited_by = ""
    if open_files is not None:
        room = open_files - _RESERVED_FILES - _FILES_PER_THREAD * threads
        if room < connections:
            allowed, limited_by = (
                max(room, 1),
                _("the open-file limit of {open_files}").format(open_files=open_files),
            )
    if windows and allowed > _WINDOWS_SOCKETS:
        allowed, limited_by = _WINDOWS_SOCKETS, _("Windows (at most 500 sockets at once)")
    return Capacity(allowed, idle_timeout, threads, limited_by)


def open_file_limit(wanted: int) -> int | None:
    """This process's open-file limit, raised towards `wanted` when the hard limit allows."""
    try:
        import resource
    except ImportError:  # Windows: sockets are not counted against a file limit
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return None if soft == resource.RLIM_INFINITY else soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def files_needed(connections: int, threads: int) -> int:
    return connections + _RESERVED_FILES + _FILES_PER_THREAD * threads


def service_log(path: Path | None) -> logging.Logger:
    """The operator's log: standard error (systemd's journal) or the file at `path`.

    One line per entry, in English, with the time in UTC; waitress's own warnings (the
    connection limit reached, a queue of waiting requests) go to the same place.
    """
    try:
        handler: logging.Handler = (
            logging.FileHandler(path, encoding="utf-8") if path else logging.StreamHandler()
        )
    except OSError as exc:
        raise SmakomError(
            _("{path}: the log cannot be written ({reason}).").format(
                path=path, reason=exc.strerror or exc
            )
        ) from None
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    formatter.converter = time.gmtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    handler.setFormatter(formatter)
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.handlers = [handler]
    waitress = logging.getLogger("waitress")
    waitress.setLevel(logging.WARNING)
    waitress.propagate = False
    waitress.handlers = [handler]
    return logger


def bind(
    app: WSGIApplication,
    host: str,
    port: int,
    *,
    connections: int = CONNECTIONS,
    idle_timeout: int = IDLE_TIMEOUT,
    threads: int = THREADS,
) -> tuple[Server, Capacity]:
    """A waitress server bound to host:port with the capacity the machine allows; not yet
    answering (`run()` does), so nothing is announced before the port is known to be free."""
    open_files = open_file_limit(files_needed(connections, threads))
    limits = capacity(connections, idle_timeout, threads, open_files, windows=os.name == "nt")
    return _create_server(app, host, port, limits), limits


def _create_server(app: WSGIApplication, host: str, port: int, limits: Capacity) -> Server:
    """A waitress server bound to host:port; one sentence when the port is taken."""
    import waitress.server

    settings: dict[str, Any] = {
        "host": host,
        "port": port,
        "threads": limits.threads,
        "connection_limit": limits.connections,
        "channel_timeout": limits.idle_timeout,
        # Silent connections are looked for this often, so they go soon after the timeout.
        "cleanup_interval": max(1, limits.idle_timeout // 3),
        "asyncore_use_poll": True,
        "backlog": 1024,
        "ident": "smakom",
        # Bodies over MAX_BODY_BYTES are refused by the service itself (413, with a page).
        "max_request_body_size": MAX_BODY_BYTES * 16,
        "max_request_header_size": 16384,
        # A reader closing the tab early is no error worth a line.
        "log_socket_errors": False,
    }
    try:
        server: Server = waitress.server.create_server(app, **settings)
    except OSError as exc:
        raise SmakomError(
            _(
                "cannot listen on {host}:{port} ({reason}): is another `smakom serve` (or "
                "another program) using that port? Stop it, or choose another with --port."
            ).format(host=host, port=port, reason=exc.strerror or exc)
        ) from None
    return server
